def includeme(config):
    config.add_route('home', '/')
    config.add_route('login', '/login')
    config.add_route('logout', '/logout')
    config.add_route('account', '/account')
    config.add_route('password', '/password')
