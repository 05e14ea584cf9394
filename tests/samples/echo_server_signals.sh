#!/usr/bin/env bash
# Drives the echo_server sample from outside, as an operator would: clients
# that reset (SO_LINGER 0, without reading their echo) must not stop the
# server; a client (python3) holds a connection open, SIGUSR1 must print the
# task dump on stderr (with the connection's task parked), SIGTERM must stop
# the server with exit status 0.
set -euo pipefail
server="$1"
work="$(mktemp -d)"
trap 'kill -9 "${pid:-}" 2>/dev/null || true; kill "${client:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

"$server" --port 0 --unix "$work/echo.sock" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "echo server: tcp" "$work/out" && break; sleep 0.1; done
port="$(sed -n 's/^echo server: tcp 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$work/out")"
[ -n "$port" ] || { echo "no port line: $(cat "$work/out")"; exit 1; }

python3 - "$port" <<'PY'
import socket, struct, sys
for _ in range(5):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"x" * 200000)  # more than the socket buffers hold: the server's echo blocks
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # reset
PY
sleep 0.3
kill -0 "$pid" 2>/dev/null || { echo "server died after client resets: $(cat "$work/err")"; exit 1; }

python3 - "$port" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"ping")
assert s.recv(4) == b"ping"
time.sleep(30)  # held open until the test ends
PY
client=$!
sleep 0.5
kill -USR1 "$pid"
for _ in $(seq 100); do grep -q "parked" "$work/err" && break; sleep 0.1; done
grep -q "^weft tasks at t=" "$work/err" || { echo "no task dump: $(cat "$work/err")"; exit 1; }
grep -q "task group" "$work/err" || { echo "dump without the server's group: $(cat "$work/err")"; exit 1; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "server exited with $status"; cat "$work/err"; exit 1; }
grep -q "stopped cleanly" "$work/out"
echo "echo_server: SIGUSR1 dump and SIGTERM shutdown ok"
