#!/usr/bin/env bash
# lighttpd.sh - Debian's lighttpd on 127.0.0.1 with server.username = nobody (it drops root after
# binding), static files served; prints the replies and its exit status after SIGTERM.
set -u
# TP_WRAP (tests/test_transparency.sh): a command the server is started under (the preload, the launcher).
. "$(dirname "$0")/driver.sh"
pick_port || exit 1
P=$PICKED
chmod 711 "$LAB_TMP"
mkdir -m 755 "$LAB_TMP/www" "$LAB_TMP/log"
[ "$(id -u)" -eq 0 ] && chown nobody "$LAB_TMP/log" # it opens its log after the drop
seq 1 20000 >"$LAB_TMP/www/numbers.txt"
echo "<p>hello</p>" >"$LAB_TMP/www/index.html"
chmod 644 "$LAB_TMP/www/"*
user=""
[ "$(id -u)" -eq 0 ] && user='server.username = "nobody"
server.groupname = "nogroup"'
cat >"$LAB_TMP/lighttpd.conf" <<CONF
server.document-root = "$LAB_TMP/www"
server.bind = "127.0.0.1"
server.port = $P
server.errorlog = "$LAB_TMP/log/error.log"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain" )
$user
CONF
${TP_WRAP:-} lighttpd -D -f "$LAB_TMP/lighttpd.conf" </dev/null &
pid=$!
started "$pid"
wait_up "$pid" curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$P/"
get "$P" /
get "$P" /numbers.txt | tail -n 2
get "$P" /missing | tail -c 4
rc=0
kill -TERM "$pid"
wait "$pid" || rc=$?
forget_pid "$pid"
echo "lighttpd exit $rc"
