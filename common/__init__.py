"""The shared layer beneath `pde` and `mri`: what both applications need and neither owns.

It imports nothing of ours (checked by tests/test_layering.py). One concept per module:

    errors        UserError and its kinds: the errors run.py turns into a one-line message
    files         atomic writes (text, JSON, HDF5, torch.save) with normal permissions
    checkpoints   checkpoints that hold only tensors and plain values, read with weights_only=True
    device        resolve_device("auto" | "cpu" | "cuda[:i]")
    distributed   torchrun set-up (world size, rank, device)
    stats         mean ± s.e., paired bootstrap intervals
    environment   what machine / versions / load a result was measured on
    tables        markdown tables
    lazy          lazy public names of a package
    timing        interleaved, median timing of several variants
    config_cli    argparse options derived from config dataclasses (each default written once)
    training      the one training engine (train_loop over an application's task)
"""
