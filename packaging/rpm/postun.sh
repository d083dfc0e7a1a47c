# amtedge %postun ($1: 0 erase, 1 upgrade). RPM has no purge: an erase keeps /var/lib/amtedge (the sealed
# store and its key) and the amtedge user, as Fedora's packaging guidelines ask; remove them by hand if wanted:
#   rm -rf /var/lib/amtedge && userdel amtedge
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
