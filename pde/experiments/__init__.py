"""FNOs with FFT, dense or Monarch transforms: models, training, evaluation and comparison reports.

    models.build_fno(transform, n_modes, in_channels, out_channels, hidden_channels, n_layers, grid_size, ...)
    transform_conv.TransformSpectralConv   SpectralConv with learnable per-axis transforms (conv_module=)
    truncated_dft.TruncatedDFT             learnable kept rows of a DFT (dense or Monarch)
    training.train(config) -> run_dir      seeded, resumable, DDP-capable training (TrainConfig)
    evaluation.evaluate(checkpoint, dataset=None, out_dir=None) -> dict
    compare.run_compare(datasets, transforms, epochs, out_dir, device, **overrides) -> dict (with "rows")

Command line: `python run.py pde train|eval|compare` (see cli.py).
"""
