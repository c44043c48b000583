"""peft adapters in the GUI: their facts in the summary, the fit check, merge-lora."""
