// Who the user is: a token from the URL (`?token=`), or, in development,
// one minted by the server's dev-only sign-in route (off in production).

export async function signIn(params) {
  const token = params.get("token");
  if (token) return { token };
  let name = params.get("name") || localStorage.getItem("tandem.name");
  if (!name) {
    name = `Guest ${Math.floor(Math.random() * 900 + 100)}`;
    localStorage.setItem("tandem.name", name);
  }
  const user = params.get("user") || name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  const response = await fetch(`/dev/token?user=${encodeURIComponent(user)}&name=${encodeURIComponent(name)}`);
  if (!response.ok) throw new Error("no token in the URL and dev sign-in is off");
  return response.json();
}
