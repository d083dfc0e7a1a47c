# amtedge %post ($1: 1 install, 2 upgrade). Joins tss (from tpm2-tss), creates the state directory, enables the
# unit on first install, and starts (install, config complete) or restarts (upgrade) it only when systemd runs.
if getent group tss >/dev/null && ! id -nG amtedge | tr ' ' '\n' | grep -qx tss; then
	usermod --append --groups tss amtedge
fi
mkdir -p /var/lib/amtedge
chown amtedge:amtedge /var/lib/amtedge
chmod 0700 /var/lib/amtedge

if [ "$1" -eq 1 ]; then
	if command -v systemctl >/dev/null 2>&1; then
		systemctl enable amtedge.service >/dev/null 2>&1 || true
	else
		# No systemctl (a minimal root): the symlink `systemctl enable` creates from [Install].
		mkdir -p /etc/systemd/system/multi-user.target.wants
		ln -sf /usr/lib/systemd/system/amtedge.service /etc/systemd/system/multi-user.target.wants/amtedge.service
	fi
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$1" -gt 1 ]; then
		systemctl try-restart amtedge.service >/dev/null 2>&1 || true
	elif problem=$(amtedge config check --config /etc/amtedge/amtedge.yaml 2>&1); then
		systemctl start amtedge.service >/dev/null 2>&1 || true
	else
		echo "amtedge: installed and enabled, not started yet:" >&2
		echo "$problem" | sed 's/^/  /' >&2
		echo "amtedge: write /etc/amtedge/site.yaml (see /usr/share/doc/amtedge/examples/site.yaml)," >&2
		echo "amtedge: then: systemctl start amtedge" >&2
	fi
fi
exit 0
