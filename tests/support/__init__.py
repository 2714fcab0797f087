"""What the test modules share and are not tests themselves: the test
applications, the backends' settings and servers, and the helpers that
read what a store or a server holds."""
