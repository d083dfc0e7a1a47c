# amtedge %preun ($1: 0 erase, 1 upgrade). On erase: stop and disable; an upgrade restarts from the new %post.
if [ "$1" -eq 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop amtedge.service amtedge.socket amtedge-admin.socket >/dev/null 2>&1 || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable amtedge.service amtedge.socket amtedge-admin.socket >/dev/null 2>&1 || true
	fi
	rm -f /etc/systemd/system/multi-user.target.wants/amtedge.service \
		/etc/systemd/system/sockets.target.wants/amtedge.socket \
		/etc/systemd/system/sockets.target.wants/amtedge-admin.socket
fi
exit 0
