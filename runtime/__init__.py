"""How the tools run, below every data format: one-line errors at the command line, bounded reads of files a
stranger may have written, all-or-nothing outputs, launches and their ranks, run locks and status, W&B runs."""
