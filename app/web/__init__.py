"""Server-rendered pages (Jinja2) for reps, the content team and compliance."""
