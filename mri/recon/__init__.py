"""MRI reconstruction with swappable Fourier transforms (FFT / dense / Monarch).

    sense.SenseOp(maps, mask=None, transform="fft")     A and Aᴴ (fourier.Fourier2d inside)
    models.build_model(name, shape, scale, **overrides) zf, cg-sense, l1-wavelet, unet, msense, dsense,
                                                        unrolled-{fft,dense,monarch}, modl-{...}
    training.train(TrainConfig(...)) -> run_dir          evaluation.evaluate(model, data_dir, acc, scans)
    compare.run_compare(data_dir, models, accelerations, n_train_scans, epochs, out_dir, device, **overrides)
    metrics: psnr, ssim, nrmse, complex_psnr, volume_metrics, mean_se
Command line: run.py mri train|eval|compare, run.py bench mri (see cli.py).
"""
