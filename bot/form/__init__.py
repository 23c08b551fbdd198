"""The questionnaire: its definition as data (questionnaire.toml) and the pure engine."""
