package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/seal"
)

// storeCommand is `amtedge store check|recover`: the sealed store's maintenance, run while the service is
// stopped (the store is locked by the running daemon).
func storeCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "recover") {
		return usageError{errors.New("usage: amtedge store check|recover [--config FILE]")}
	}
	fs := newFlagSet("store "+args[0], stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if args[0] == "check" {
		return storeCheck(ctx, cfg, stdout)
	}
	return storeRecover(ctx, cfg, stdout)
}

// storeCheck unseals the key and verifies the state file: bbolt's consistency and that every record decrypts.
func storeCheck(ctx context.Context, cfg *Config, stdout io.Writer) error {
	dek, err := cfg.sealer().Unseal(ctx)
	if err != nil {
		return fmt.Errorf("unseal the store key (custody.seal: %s): %w", cfg.Custody.Seal, err)
	}
	store, err := cache.Open(storePath(cfg.path(cfg.StateDir)), dek)
	clear(dek)
	if err != nil {
		if errors.Is(err, cache.ErrLocked) {
			return fmt.Errorf("%w; stop the service first (systemctl stop amtedge)", err)
		}
		return err
	}
	defer store.Close()
	if err := store.Check(ctx); err != nil {
		return err
	}
	devices, err := store.ListDevices(ctx)
	if err != nil {
		return err
	}
	outbox, err := store.Outbox(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store %s is consistent and every record decrypts: %d devices, %d writes queued for Vault\n",
		storePath(cfg.path(cfg.StateDir)), len(devices), len(outbox))
	return nil
}

// storeRecover gives a box whose key cannot be unsealed (TPM cleared or replaced, PCRs changed, key file damaged)
// a new key and a new, empty store. Nothing is deleted: the old state file and sealed key are kept aside under a
// dated name, so they can be put back if the old TPM state returns. The site's domains and profiles are imported
// again at the next start; device passwords that only the old store held cannot be read without its key, and
// the command says how many writes had not reached Vault.
func storeRecover(ctx context.Context, cfg *Config, stdout io.Writer) error {
	stateDir := cfg.path(cfg.StateDir)
	sealer := cfg.sealer()
	dbPath := storePath(stateDir)
	if _, err := cache.OutboxLength(dbPath); errors.Is(err, cache.ErrLocked) {
		return fmt.Errorf("%w; stop the service first (systemctl stop amtedge)", err)
	}
	dek, err := sealer.Unseal(ctx)
	if err == nil {
		store, oerr := cache.Open(dbPath, dek)
		clear(dek)
		if oerr == nil {
			store.Close()
			fmt.Fprintln(stdout, "the store's key unseals and opens the store: nothing to recover (run amtedge store check to verify it)")
			return nil
		}
		if !errors.Is(oerr, cache.ErrWrongKey) {
			return fmt.Errorf("the store cannot be opened, and not because of its key — fix this first: %w", oerr)
		}
		fmt.Fprintf(stdout, "the key unseals but does not open the store: %v\n", oerr)
	} else if errors.Is(err, seal.ErrUnsealRefused) {
		fmt.Fprintf(stdout, "the store's key cannot be unsealed: %v\n", err)
	} else {
		return fmt.Errorf("the store's key cannot be read, and not because it was refused — fix this first: %w", err)
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	keyPath := cfg.keyPath()
	queued, qerr := cache.OutboxLength(dbPath)
	for _, p := range []string{dbPath, keyPath} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		aside := p + ".unrecoverable-" + stamp
		if err := os.Rename(p, aside); err != nil {
			return fmt.Errorf("keep %s aside: %w", p, err)
		}
		fmt.Fprintf(stdout, "kept aside: %s\n", aside)
	}
	if err := syncDir(stateDir); err != nil {
		return err
	}
	newKey, _, err := seal.LoadOrCreate(ctx, sealer)
	if err != nil {
		return fmt.Errorf("create a new key: %w", err)
	}
	store, err := cache.Open(dbPath, newKey)
	clear(newKey)
	if err != nil {
		return fmt.Errorf("create a new store: %w", err)
	}
	if err := store.Close(); err != nil {
		return err
	}
	switch {
	case qerr != nil:
		fmt.Fprintf(stdout, "could not count the old store's writes that had not reached Vault: %v\n", qerr)
	case queued > 0:
		fmt.Fprintf(stdout, "the old store held %d writes that had not reached Vault; their passwords can only be read "+
			"with the old key (put the kept-aside files back if the old TPM state returns)\n", queued)
	default:
		fmt.Fprintln(stdout, "the old store had no writes waiting for Vault")
	}
	fmt.Fprintln(stdout, "new key and store created; (re)start the service: the site's domains and profiles are imported again")
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
