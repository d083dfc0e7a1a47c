package site

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The walker checks the YAML node tree against the Go types before anything
// is decoded, so that every structural error can name its key path — the
// yaml decoder reports only lines ("line 7: field foo not found"). It checks
// keys (unknown, duplicated, refused), kinds and scalar types, and records
// the line of every key path for the later semantic errors.
//
// It refuses aliases outright: a site file has no need for them, and
// refusing them also rules out alias-expansion bombs in this walk.
type walker struct {
	errs  []error
	lines map[string]int // key path → line of its key
}

func (w *walker) fail(path string, line int, msg string) {
	w.errs = append(w.errs, &KeyError{Path: path, Line: line, Msg: msg})
}

// line returns the line of path, or of its nearest recorded ancestor (a
// missing key is reported at its mapping's line).
func (w *walker) line(path string) int {
	for path != "" {
		if l, ok := w.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

func (w *walker) walkRoot(n *yaml.Node) {
	if n.Kind == yaml.DocumentNode || isNull(n) {
		return // an empty document; Parse reports the empty file
	}
	if n.Kind != yaml.MappingNode {
		w.fail("site file", n.Line, "must be a mapping with the keys domains and profiles")
		return
	}
	w.walkValue(n, reflect.TypeFor[File](), "")
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) walkValue(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		w.fail(path, n.Line, "YAML aliases (*name) are not supported in a site file; write the value out")
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return // absent: the zero value (nil for pointers)
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkMapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(path, n.Line, "must be a list")
			return
		}
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			w.lines[ip] = item.Line
			if isNull(item) {
				w.fail(ip, item.Line, "is empty")
				continue
			}
			w.walkValue(item, t.Elem(), ip)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(path, n.Line, "must be a single value, not a list or mapping")
			return
		}
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		default:
			w.fail(path, n.Line, "explicit YAML tags are not supported here")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			w.fail(path, n.Line, "must be true or false")
		}
	case reflect.Int:
		var v int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
			w.fail(path, n.Line, "must be a whole number")
		}
	default:
		// Only reachable if a field of an unhandled type is added to the model.
		w.fail(path, n.Line, fmt.Sprintf("cannot be read (no site file rule for %s)", t))
	}
}

func (w *walker) walkMapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.fail(path, n.Line, "must be a mapping (key: value lines)")
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(path, k.Line, "keys must be plain names")
			continue
		}
		key := k.Value
		kp := joinKey(path, key)
		if first, dup := seen[key]; dup {
			w.fail(kp, k.Line, fmt.Sprintf("appears more than once (first on line %d)", first))
			continue
		}
		seen[key] = k.Line
		w.lines[kp] = k.Line
		if msg := refusedKey(t, key); msg != "" {
			w.fail(kp, k.Line, msg)
			continue
		}
		ft, ok := fields[key]
		if !ok {
			w.fail(kp, k.Line, unknownKeyMsg(t, key, fields))
			continue
		}
		w.walkValue(v, ft, kp)
	}
}

// yamlFields maps the YAML keys of struct type t to their Go types,
// following `yaml:",inline"` as the decoder does.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// refusedKey returns why a key that the model knows may not appear in a site
// file, or "".
func refusedKey(t reflect.Type, key string) string {
	if t != reflect.TypeFor[Profile]() {
		return ""
	}
	switch key {
	case "amtPassword":
		return "inline passwords are not allowed in a site file: put the password in a file only the box can read (chmod 600) and name it with amtPasswordFile, or set generateRandomPassword: true"
	case "mebxPassword":
		return "inline passwords are not allowed in a site file: put the password in a file only the box can read (chmod 600) and name it with mebxPasswordFile, or set generateRandomMEBxPassword: true"
	case "tenantId":
		return "is not a site file setting: site file profiles belong to the box's default tenant"
	case "version":
		return "is the admin API's concurrency token, not a site file setting"
	}
	return ""
}

// domainKeyHints answer the keys an operator brings from RPS's domain API or
// guesses for a secret.
var domainKeyHints = map[string]string{
	"profileName":                   `the site file calls the domain's name "name"`,
	"domainSuffix":                  `the site file calls it "suffix"`,
	"password":                      "inline secrets are not allowed in a site file: put the PFX password in a file and name it with passwordFile",
	"pfxPassword":                   "inline secrets are not allowed in a site file: put the PFX password in a file and name it with passwordFile",
	"certPassword":                  "inline secrets are not allowed in a site file: put the PFX password in a file and name it with passwordFile",
	"provisioningCertPassword":      "inline secrets are not allowed in a site file: put the PFX password in a file and name it with passwordFile",
	"pfx":                           "the certificate is given by file: name the .pfx file with pfxFile",
	"cert":                          "the certificate is given by file: name the .pfx file with pfxFile",
	"provisioningCert":              "the certificate is given by file: name the .pfx file with pfxFile",
	"provisioningCertStorageFormat": "not needed: the site file names the .pfx file with pfxFile",
}

func unknownKeyMsg(t reflect.Type, key string, fields map[string]reflect.Type) string {
	if key == "<<" {
		return "YAML merge keys (<<) are not supported in a site file"
	}
	if t == reflect.TypeFor[Domain]() {
		if hint, ok := domainKeyHints[key]; ok {
			return "unknown key: " + hint
		}
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		if refusedKey(t, k) != "" {
			continue
		}
		if strings.EqualFold(k, key) {
			return fmt.Sprintf("unknown key; did you mean %q? (keys are case-sensitive)", k)
		}
		known = append(known, k)
	}
	slices.Sort(known)
	return "unknown key; known keys here: " + strings.Join(known, ", ")
}
