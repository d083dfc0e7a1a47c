# amtedge %pre ($1: 1 install, 2 upgrade). Creates the system user before the files are installed, so
# /etc/amtedge/amtedge.yaml gets group amtedge. Joining tss happens in %post.
if ! getent passwd amtedge >/dev/null; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		echo 'u amtedge - "amtedge appliance" /var/lib/amtedge /usr/sbin/nologin' |
			systemd-sysusers --replace=/usr/lib/sysusers.d/amtedge.conf -
	else
		getent group amtedge >/dev/null || groupadd --system amtedge
		useradd --system --gid amtedge --home-dir /var/lib/amtedge --no-create-home \
			--shell /usr/sbin/nologin --comment "amtedge appliance" amtedge
	fi
fi
exit 0
