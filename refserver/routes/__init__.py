"""The handlers, one module per group of endpoints; ``refserver.app`` maps paths to them."""
