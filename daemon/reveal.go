package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/secrets"
)

// revealPassword is the web UI's "reveal password" action: the AMT password the device most likely holds now and
// its MEBx password, read from the sealed store. Every reveal leaves a password_revealed record naming who asked
// (the audit trail DESIGN.md's custody table requires); the passwords themselves are never logged.
func (b *box) revealPassword(ctx context.Context, uuid, actor string) (amt, mebx string, err error) {
	if b.store == nil {
		return "", "", errors.New("the sealed store is degraded: no password can be read until it is recovered (amtedge store recover)")
	}
	dev, err := b.store.Device(ctx, uuid)
	if errors.Is(err, secrets.ErrNotFound) {
		return "", "", fmt.Errorf("the box holds no password for device %s", uuid)
	}
	if err != nil {
		return "", "", fmt.Errorf("read the stored passwords of device %s: %w", uuid, err)
	}
	candidates := dev.Candidates()
	if len(candidates) == 0 {
		return "", "", fmt.Errorf("the box holds no current AMT password for device %s (deactivated, or every set it wrote was refused)", uuid)
	}
	b.log.Info("stored AMT password revealed", "event", events.PasswordRevealed, "user", actor, "device", uuid,
		"state", string(dev.Current.State))
	return candidates[0], dev.MEBxPassword(), nil
}
