// Command amtedge is the site-local Intel AMT provisioning appliance: `serve` runs the box, `simulate` drives
// simulated rpc-go agents and AMT devices against a box (field smoke test and load generator), `config check`
// validates a configuration file, `version` prints the build.
//
// main wires the system explicitly — config, logger, store, catalog, flows, listeners — and keeps no global
// mutable state.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `amtedge — site-local Intel AMT provisioning appliance

Usage:
  amtedge serve [--config FILE]        run the appliance (without --config: the embedded demo default)
  amtedge simulate --url URL --profile NAME [flags]
                                       run simulated rpc-go agents and AMT devices against a box
  amtedge config check [--config FILE] validate a configuration file and its site file
  amtedge store check [--config FILE]  verify the sealed store (stop the service first)
  amtedge store recover [--config FILE]
                                       new key and store when the old key cannot be unsealed
  amtedge status                       health of the running box and its live sessions
  amtedge devices list [--search S]    devices, newest first, with their last result
  amtedge devices show UUID            a device's records with the step timeline
  amtedge profiles list                the box's profiles (no passwords)
  amtedge domains list                 the box's domains and certificate expiry
  amtedge profiles create --file F     add a profile (RPS's JSON body); profiles delete NAME
  amtedge domains import --pfx F --suffix S [--name N] [--password-file P]
                                       add a provisioning certificate; domains delete NAME
  amtedge domains inspect --pfx F [--suffix S] [--password-file P]
                                       what a PFX holds and whether it would import (stores nothing)
                                       (these commands ask the running box over its control socket;
                                       --socket PATH or --config FILE to find it, --json for raw JSON)
  amtedge sync now                     pull from and push to the central Vault at once
  amtedge admin init [--user U]        create the first web UI / API admin account (no default password)
  amtedge admin passwd [--user U]      change an admin password (ends that account's browser sessions)
  amtedge admin token create|list|revoke
                                       API tokens for automation, scope read or write
  amtedge doctor [--config FILE] [--interface IFACE] [--json]
                                       check the box: config, TPM, seal, Vault, clock, certificates,
                                       listeners, the segment's DHCP suffix; exit 1 when one fails
  amtedge version                      print the version

Run "amtedge <command> -h" for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveCommand(args[1:], stdout, stderr)
	case "simulate":
		err = simulateCommand(args[1:], stdout, stderr)
	case "store":
		err = storeCommand(args[1:], stdout, stderr)
	case "sync":
		err = syncCommand(args[1:], stdout, stderr)
	case "admin":
		err = adminCommand(args[1:], os.Stdin, stdout, stderr)
	case "status":
		err = statusCommand(args[1:], stdout, stderr)
	case "devices":
		err = devicesCommand(args[1:], stdout, stderr)
	case "profiles":
		err = profilesCommand(args[1:], stdout, stderr)
	case "domains":
		err = domainsCommand(args[1:], stdout, stderr)
	case "doctor":
		err = doctorCommand(args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprint(stderr, "usage: amtedge config check [--config FILE]\n")
			return 2
		}
		err = configCheckCommand(args[2:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "amtedge %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "amtedge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "amtedge %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "amtedge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError is a bad command line (exit status 2).
type usageError struct{ error }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("amtedge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
