"""Result directories -> plotly figures -> one self-contained HTML file."""
