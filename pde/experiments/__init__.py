"""FNOs whose FFTs are kept or swapped for learnable transforms (every kind of monarch_core.TRANSFORM_KINDS):
models, training, evaluation, resolution transfer and comparison reports.

    models.build_fno(transform, n_modes, in_channels, out_channels, hidden_channels, n_layers, grid_size, ...)
    transform_conv.TransformSpectralConv   SpectralConv with per-axis monarch_core.LearnableDFT (conv_module=)
    resize.resize_fno(model, grid) -> (model, residuals)   move learned transforms to another grid
    training.train(config) -> run_dir      on the shared engine (common.training): validation-selected
                                           best.pt, resumable, DDP-capable (TrainConfig)
    evaluation.evaluate(checkpoint, dataset=None, out_dir=None, grid=None) -> dict   the test split, once
    transfer.load_for_dataset(checkpoint, dataset, grid)   a checkpoint on data at another resolution
    superresolution.evaluate_at_grids(checkpoint, datasets) -> dict   zero-shot errors at other grids
    study.PdeStudyApp                      the PDE application of the study engine (common.study)
    study_presets.PRESETS                  pde-smoke, burgers-cpu, darcy-cpu, ns-cpu, ns-gpu
    compare.run_compare(datasets, transforms, epochs, out_dir, seeds, **options)   an untuned study

Command line: `python run.py pde train|eval|compare|study` (see cli.py).
"""
