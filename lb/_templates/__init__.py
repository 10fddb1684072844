"""Package copy of templates/lb/ (kept identical by a test) so an installed wheel finds its templates."""
