package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/amtedge/amtedge/appliance/access"
)

// `amtedge admin`: the web UI's admin accounts and the REST API's tokens, managed over the control socket
// (appliance/access serves them there; see control.go for who may connect). Passwords are read from the
// terminal without echo, or as one line from a pipe; they only travel over the unix socket.

const adminUsage = `usage:
  amtedge admin init [--user admin]          create the first admin account (password prompted twice)
  amtedge admin passwd [--user admin]        change an account's password (its browser sessions end)
  amtedge admin token create NAME --scope read|write
                                             create an API token; its secret is printed once
  amtedge admin token list                   the API tokens (never their secrets)
  amtedge admin token revoke NAME            revoke an API token
Passwords are read from the terminal without echo; when standard input is not a terminal, the first line of
standard input is the password. All take --socket PATH or --config FILE to find the box, and --json.`

// adminCommand is `amtedge admin …`; stdin is where passwords come from.
func adminCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(adminUsage)}
	}
	switch args[0] {
	case "init", "passwd":
		return adminPassword(args[0], args[1:], stdin, stdout, stderr)
	case "token", "tokens":
		if len(args) < 2 {
			return usageError{errors.New(adminUsage)}
		}
		switch args[1] {
		case "create":
			return adminTokenCreate(args[2:], stdout, stderr)
		case "list":
			return adminTokenList(args[2:], stdout, stderr)
		case "revoke":
			return adminTokenRevoke(args[2:], stdout, stderr)
		}
		return usageError{fmt.Errorf("unknown admin token command %q (create, list or revoke)\n%s", args[1], adminUsage)}
	case "-h", "--help", "help":
		_, err := fmt.Fprintln(stdout, adminUsage)
		return err
	}
	return usageError{fmt.Errorf("unknown admin command %q\n%s", args[0], adminUsage)}
}

// adminPassword is `admin init` and `admin passwd`.
func adminPassword(verb string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var user string
	return cliCommand("admin "+verb, args, stdout, stderr, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "admin", "the admin account's user name")
	}, func(c *controlClient, _ *cliFlags, _ []string) ([]byte, func() error, error) {
		password, err := readNewPassword(stdin, stderr, user)
		if err != nil {
			return nil, nil, err
		}
		path := "/api/v1/accounts/init"
		if verb == "passwd" {
			path = "/api/v1/accounts/password"
		}
		raw, err := c.send(http.MethodPost, path, access.AccountRequest{User: user, Password: password})
		if err != nil {
			return nil, nil, err
		}
		var res access.AccountResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error { _, err := fmt.Fprintln(stdout, clean(res.Message)); return err }, nil
	})
}

func adminTokenCreate(args []string, stdout, stderr io.Writer) error {
	var scope string
	return cliCommand("admin token create", args, stdout, stderr, 1, func(fs *flag.FlagSet) {
		fs.StringVar(&scope, "scope", "", "read (GET and HEAD only) or write (everything); required")
	}, func(c *controlClient, _ *cliFlags, pos []string) ([]byte, func() error, error) {
		if len(pos) != 1 {
			return nil, nil, usageError{errors.New("usage: amtedge admin token create NAME --scope read|write")}
		}
		if scope == "" {
			return nil, nil, usageError{errors.New("--scope is required: read (GET and HEAD only) or write (everything)")}
		}
		raw, err := c.send(http.MethodPost, "/api/v1/tokens", access.TokenRequest{Name: pos[0], Scope: access.Scope(scope)})
		if err != nil {
			return nil, nil, err
		}
		var res access.TokenCreated
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			_, err := fmt.Fprintf(stdout, "%s\n\nAPI token %s (scope %s) created. Copy the secret above now: it is not shown again.\n"+
				"Send it as: Authorization: Bearer <secret>\n", res.Secret, clean(res.Name), clean(string(res.Scope)))
			return err
		}, nil
	})
}

func adminTokenList(args []string, stdout, stderr io.Writer) error {
	return cliCommand("admin token list", args, stdout, stderr, 0, nil, func(c *controlClient, _ *cliFlags, _ []string) ([]byte, func() error, error) {
		raw, err := c.get("/api/v1/tokens", nil)
		if err != nil {
			return nil, nil, err
		}
		var list []access.TokenInfo
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			if len(list) == 0 {
				_, err := fmt.Fprintln(stdout, "no API tokens (create one with: amtedge admin token create NAME --scope read|write)")
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPE\tCREATED\tLAST USED")
			for _, t := range list {
				used := "never"
				if !t.LastUsed.IsZero() {
					used = t.LastUsed.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(t.Name), clean(string(t.Scope)), t.Created.Local().Format(time.DateTime), used)
			}
			return tw.Flush()
		}, nil
	})
}

func adminTokenRevoke(args []string, stdout, stderr io.Writer) error {
	return cliCommand("admin token revoke", args, stdout, stderr, 1, nil, func(c *controlClient, _ *cliFlags, pos []string) ([]byte, func() error, error) {
		if len(pos) != 1 {
			return nil, nil, usageError{errors.New("usage: amtedge admin token revoke NAME")}
		}
		raw, err := c.send(http.MethodDelete, "/api/v1/tokens/"+pathEscapeName(pos[0]), nil)
		if err != nil {
			return nil, nil, err
		}
		var res access.AccountResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error { _, err := fmt.Fprintln(stdout, clean(res.Message)); return err }, nil
	})
}

// pathEscapeName keeps a name one path segment, whatever it contains (the box then refuses it by name).
func pathEscapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// send is sendJSON with body marshalled to JSON (nil: no body).
func (c *controlClient) send(method, path string, body any) ([]byte, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	return c.sendJSON(method, path, nil, b)
}

// maxPasswordLine bounds a password read from a pipe (the box accepts at most 256 characters).
const maxPasswordLine = 4096

// readNewPassword reads the new password: from a terminal twice without echo (prompts on stderr), otherwise
// the first line of stdin (scripts: `printf '%s\n' "$PW" | amtedge admin init`).
func readNewPassword(stdin io.Reader, stderr io.Writer, user string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stderr, "New password for %s (12 to 256 characters): ", user)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprintf(stderr, "Repeat the password: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(first, second) {
			return "", errors.New("the two passwords differ; nothing changed")
		}
		if len(first) == 0 {
			return "", errors.New("no password given; nothing changed")
		}
		return string(first), nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(stdin, maxPasswordLine+2), maxPasswordLine+2).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("the password line on standard input is longer than %d bytes", maxPasswordLine)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on standard input: type it at a terminal, or pipe it as the first line")
	}
	return line, nil
}
