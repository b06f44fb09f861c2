"""MRI reconstruction with swappable Fourier transforms (FFT / dense / Monarch).

    sense.SenseOp(maps=None, mask=None, transform="fft" | module)   A and Aᴴ; .with_data(maps, mask)
    models.build_model(name, shape, scale, **overrides)  names of model_names.registry(): zf, cg-sense,
        l1-wavelet, unet, unet-plain, msense, dsense, {kind}sense, unrolled-{kind}, modl-{kind}
    training.train(TrainConfig(...)) -> run_dir           (common.training engine; READERS by format)
    evaluation.evaluate(model, data_dir, acc, scans)
    compare.run_compare(data_dir, models, accelerations, n_train_scans, epochs, out_dir, seeds, **options)  untuned study
    study.MriStudyApp: the application of the shared study engine (presets: study_presets.PRESETS)
    metrics: psnr, ssim, nrmse, complex_psnr, volume_metrics, mean_se
Command line: run.py mri train|eval|compare|study, run.py bench mri (see cli.py).
"""
