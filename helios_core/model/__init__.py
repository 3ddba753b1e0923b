"""Model folders and the model parts inside them: validate, load and save diffusers-format Helios models."""
