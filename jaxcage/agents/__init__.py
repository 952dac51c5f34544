"""Scripted red agents as pure decision functions over ``EnvState`` (B_line, Meander, Sleep)."""
