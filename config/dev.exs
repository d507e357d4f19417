import Config

# The browser demo's sign-in route (TandemWeb.DevSignIn) mints tokens for anyone: dev only.
config :tandem, dev_sign_in: true
