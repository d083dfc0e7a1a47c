package agent

import (
	"strconv"
	"strings"
)

// Verbs an agent may open a session with.
const (
	VerbActivate    = "activate"
	VerbDeactivate  = "deactivate"
	VerbMaintenance = "maintenance"
)

// Maintenance tasks (rpc-go 2.x only); rpc-go renames its CLI's syncclock to synctime on the wire.
const (
	TaskSyncTime       = "synctime"
	TaskSyncIP         = "syncip"
	TaskChangePassword = "changepassword"
	TaskSyncHostname   = "synchostname"
	TaskSyncDeviceInfo = "syncdeviceinfo"
)

// Method is the parsed command line rpc-go puts into the `method` field of its first message (§2.4), e.g.
// `activate --profile acm`, `deactivate --password P -f`, `maintenance -password P --changepassword NEW`.
type Method struct {
	Verb     string // one of the Verb constants; "" when the first token is not one of them
	Profile  string
	Password string // --password / -p / -password value; the payload's password is authoritative
	Force    bool
	Task     string // maintenance: first task flag present
	TaskArg  string // changepassword: the static new password, if given
}

// ParseMethod parses a method command line like RPS does with minimist. Tokens are separated by white space, so a
// profile name or password containing spaces cannot travel here (RPS has the same limit; the payload carries the
// password anyway). Unknown flags are ignored, as minimist does.
func ParseMethod(line string) Method {
	tokens := strings.Fields(line)
	var m Method
	if len(tokens) == 0 {
		return m
	}
	switch tokens[0] {
	case VerbActivate, VerbDeactivate, VerbMaintenance:
		m.Verb = tokens[0]
	default:
		return m
	}
	for i := 1; i < len(tokens); i++ {
		name, value, hasValue := strings.Cut(tokens[i], "=")
		next := func() string {
			if hasValue {
				return value
			}
			if i+1 < len(tokens) && !strings.HasPrefix(tokens[i+1], "-") {
				i++
				return tokens[i]
			}
			return ""
		}
		switch name {
		case "--profile":
			m.Profile = next()
		case "--password", "-password", "-p":
			m.Password = next()
		case "-f", "--force":
			m.Force = true
		case "--synctime", "--syncclock", "--syncip", "--synchostname", "--syncdeviceinfo":
			if m.Task == "" {
				m.Task = strings.TrimPrefix(name, "--")
				if m.Task == "syncclock" {
					m.Task = TaskSyncTime
				}
			}
		case "--changepassword":
			// The new password may start with '-': take the next token unless it is a flag this parser knows.
			arg := ""
			if hasValue {
				arg = value
			} else if i+1 < len(tokens) && !knownFlag(tokens[i+1]) {
				i++
				arg = tokens[i]
			}
			if m.Task == "" {
				m.Task = TaskChangePassword
				m.TaskArg = arg
			}
		}
	}
	return m
}

// knownFlag reports whether tok is a flag ParseMethod understands.
func knownFlag(tok string) bool {
	name, _, _ := strings.Cut(tok, "=")
	switch name {
	case "--profile", "--password", "-password", "-p", "-f", "--force", "--synctime", "--syncclock", "--syncip",
		"--synchostname", "--syncdeviceinfo", "--changepassword":
		return true
	}
	return false
}

// versionSupported applies RPS's rule (§2.10) for server version 4.0.0: same major and (same minor with the
// server's revision at least the client's, or a server minor at least the client's).
func versionSupported(v string) bool {
	server := [3]int{4, 0, 0}
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return false
	}
	var client [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return false
		}
		client[i] = n
	}
	if client[0] != server[0] {
		return false
	}
	if client[1] == server[1] {
		return server[2] >= client[2]
	}
	return server[1] >= client[1]
}
