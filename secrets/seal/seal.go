// Package seal provides the data-encryption key (DEK) that encrypts the box's local secret store.
//
// A Sealer creates the DEK once and hands it back at every start; how it protects the key at rest is the mode:
// Software keeps it in a file only the service user can read (for boxes without a TPM and for tests); TPM seals
// it to the box's TPM 2.0, so the state directory alone (a copied disk, a backup) does not give the key away.
// The daemon unseals once at start and keeps the key in memory; nothing here is meant to be called per request.
//
// This package must never log, print or put the key, or any part of it, into an error text, and must never
// replace an existing key: a state file encrypted under a lost key is lost.
package seal

import (
	"context"
	"errors"
	"fmt"
)

// KeySize is the DEK length in bytes: an AES-256 key.
const KeySize = 32

var (
	// ErrNoKey is returned (wrapped) by Unseal when no DEK has been created yet.
	ErrNoKey = errors.New("no data-encryption key has been created yet")
	// ErrKeyExists is returned (wrapped) by Create when a DEK already exists.
	ErrKeyExists = errors.New("a data-encryption key already exists")
)

// Sealer is one way of keeping the DEK at rest.
type Sealer interface {
	// Unseal returns the DEK (KeySize bytes). It returns an error wrapping ErrNoKey when none exists yet, and
	// another error when one exists but cannot be used (the caller must then not create a new one over it).
	Unseal(ctx context.Context) ([]byte, error)
	// Create makes a new random DEK, stores it sealed and returns it. It fails, and changes nothing, when a
	// DEK already exists.
	Create(ctx context.Context) ([]byte, error)
}

// LoadOrCreate returns the DEK from s, creating one when none exists yet. created reports whether it was
// created now; a caller that finds existing encrypted state next to a newly created key knows the old key was
// lost (and that the state can only be rebuilt, e.g. re-synced from Vault).
func LoadOrCreate(ctx context.Context, s Sealer) (dek []byte, created bool, err error) {
	dek, err = s.Unseal(ctx)
	if errors.Is(err, ErrNoKey) {
		dek, err = s.Create(ctx)
		created = err == nil
		if errors.Is(err, ErrKeyExists) {
			// Another process created it between our Unseal and Create: use that one.
			dek, err = s.Unseal(ctx)
		}
	}
	if err != nil {
		return nil, false, err
	}
	if err := checkKey(dek); err != nil {
		return nil, false, err
	}
	return dek, created, nil
}

// checkKey guards against a Sealer handing out a key of the wrong size (it would fail later, far from the cause).
func checkKey(dek []byte) error {
	if len(dek) != KeySize {
		return fmt.Errorf("data-encryption key is %d bytes, want %d", len(dek), KeySize)
	}
	return nil
}
