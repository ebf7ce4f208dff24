#!/usr/bin/env bash
# nginx.sh - Debian's nginx on 127.0.0.1 with its workers as `user nobody`, a static file and a
# proxied request served; prints the replies, the exit status after SIGQUIT (graceful), and the
# error log's alert/crit/emerg lines and lines not nginx's own (its workers' stderr goes there).
set -u
# TP_WRAP (tests/test_transparency.sh): a command the server is started under (the preload, the launcher).
. "$(dirname "$0")/driver.sh"
pick_port || exit 1
P=$PICKED
chmod 711 "$LAB_TMP"
mkdir -m 755 "$LAB_TMP/www"
seq 1 20000 >"$LAB_TMP/www/numbers.txt"
chmod 644 "$LAB_TMP/www/numbers.txt"
user=""
[ "$(id -u)" -eq 0 ] && user="user nobody nogroup;"
cat >"$LAB_TMP/nginx.conf" <<CONF
$user
worker_processes 2;
pid $LAB_TMP/nginx.pid;
error_log $LAB_TMP/error.log notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $LAB_TMP/body;
    proxy_temp_path $LAB_TMP/proxy;
    fastcgi_temp_path $LAB_TMP/fastcgi;
    uwsgi_temp_path $LAB_TMP/uwsgi;
    scgi_temp_path $LAB_TMP/scgi;
    server {
        listen 127.0.0.1:$P;
        root $LAB_TMP/www;
        location = /hello { return 200 "hello from nginx\n"; }
        location = /via-proxy { proxy_pass http://127.0.0.1:$P/hello; }
    }
}
CONF
${TP_WRAP:-} nginx -p "$LAB_TMP" -c "$LAB_TMP/nginx.conf" -g 'daemon off;' </dev/null &
pid=$!
started "$pid"
wait_up "$pid" curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$P/hello"
get "$P" /hello
get "$P" /via-proxy
get "$P" /numbers.txt | tail -n 2
get "$P" /missing | tail -c 20
rc=0
kill -QUIT "$(cat "$LAB_TMP/nginx.pid")" # the master's own pid ($pid may be a launcher's)
wait "$pid" || rc=$?
forget_pid "$pid"
echo "nginx exit $rc"
grep -E '\[(alert|crit|emerg)\]|^[^0-9]' "$LAB_TMP/error.log" | sed 's/^[0-9\/: ]*//; s/[0-9]*#[0-9]*: //'
