"""What every model family's fine-tune shares: the run config, LoRA wiring, the curriculum trainer,
the resume/save/history tail, the adapter folder, the loss plot, the depth-span probes and the one
command-line entry point (:mod:`training.finetune.launch`), which dispatches to the family's backend.

A family (training/backends/<family>/) supplies only what is its own: model and processor,
encoding and collation, which modules are the projector and the vision tower, and whether
the head is tied.
"""
