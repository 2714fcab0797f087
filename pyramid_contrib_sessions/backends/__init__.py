"""One thin module per store; the shared logic lives above them."""
