"""Export documents (Markdown, JSON, PDF, DOCX) and the fonts they are set in."""
