package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/amtedge/amtedge/appliance/profiles"
)

// MaxBodyBytes bounds a request body: a PFX of up to 1 MiB travels as base64 (4/3 larger) inside the JSON.
const MaxBodyBytes = 2 << 20

// MaxPFXBase64 bounds the base64 text of a provisioning certificate.
const MaxPFXBase64 = 1 << 20

// secretFields are body fields whose values are never echoed, in an error item or anywhere else.
var secretFields = map[string]bool{"amtPassword": true, "mebxPassword": true, "provisioningCert": true, "provisioningCertPassword": true}

// decodeObject decodes body, which must be one JSON object, into the struct dst points to, field by field, so that
// every bad field is reported rather than only the first: a wrong type names the field, an unknown field is an
// item of its own. Fields named in ignore are accepted and dropped (what a GET returns but a write cannot set).
// Only the fields present in the body are written to dst; a JSON null sets the field to its zero value. It
// returns the names present. Values are never echoed for secret fields, and type errors echo no value at all.
func decodeObject(body []byte, dst any, ignore ...string) (map[string]bool, []profiles.FieldError) {
	if len(body) > MaxBodyBytes {
		return nil, []profiles.FieldError{bodyItem("", nil, fmt.Sprintf("The request body is %d bytes; at most %d are accepted", len(body), MaxBodyBytes))}
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		msg := "The request body must be a JSON object"
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			msg = fmt.Sprintf("The request body is not valid JSON (at byte %d)", syn.Offset)
		case len(bytes.TrimSpace(body)) == 0:
			msg = "The request body is empty; a JSON object is required"
		}
		return nil, []profiles.FieldError{bodyItem("", nil, msg)}
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, []profiles.FieldError{bodyItem("", nil, "The request body must hold exactly one JSON object, with nothing after it")}
	}

	v := reflect.ValueOf(dst).Elem()
	fields := jsonFields(v.Type())
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names) // items in a stable order
	present := map[string]bool{}
	var errs []profiles.FieldError
	for _, name := range names {
		if slices.Contains(ignore, name) {
			continue
		}
		idx, ok := fields[name]
		if !ok {
			var value any = name
			errs = append(errs, bodyItem(name, value, fmt.Sprintf("Unknown field %s", name)))
			continue
		}
		f := v.Field(idx)
		msg := string(raw[name])
		if msg == "null" {
			f.Set(reflect.Zero(f.Type()))
			present[name] = true
			continue
		}
		p := reflect.New(f.Type())
		if err := json.Unmarshal(raw[name], p.Interface()); err != nil {
			errs = append(errs, bodyItem(name, nil, typeMessage(name, f.Type(), err)))
			continue
		}
		f.Set(p.Elem())
		present[name] = true
	}
	return present, errs
}

// jsonFields maps the JSON names of t's exported fields to their index.
func jsonFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out[name] = i
	}
	return out
}

// typeMessage says what type the field wants, naming the inner field for arrays of objects. It quotes no value.
func typeMessage(name string, t reflect.Type, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" && t.Kind() == reflect.Slice {
		inner := te.Field
		if i := strings.LastIndex(inner, "."); i >= 0 {
			inner = inner[i+1:]
		}
		return fmt.Sprintf("%s: each item's %s must be %s", name, inner, kindWord(te.Type))
	}
	return fmt.Sprintf("%s must be %s", name, kindWord(t))
}

func kindWord(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "an array of objects"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(kindWord(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "of another type"
	}
}

// bodyItem is one 400 item about the request body. A secret field's value is dropped whatever the caller passed.
func bodyItem(path string, value any, msg string) profiles.FieldError {
	if secretFields[path] {
		value = nil
	}
	return profiles.FieldError{Type: "field", Value: value, Msg: msg, Path: path, Location: "body"}
}

// domainBody is RPS's AMTDomain request body.
type domainBody struct {
	ProfileName                   string `json:"profileName"`
	DomainSuffix                  string `json:"domainSuffix"`
	ProvisioningCert              string `json:"provisioningCert"`
	ProvisioningCertStorageFormat string `json:"provisioningCertStorageFormat"`
	ProvisioningCertPassword      string `json:"provisioningCertPassword"`
	TenantID                      string `json:"tenantId"`
	Version                       string `json:"version"`
}

// Fields a GET returns that a write body may carry back but cannot set: the UI and scripts PATCH what they read.
var (
	ignoredProfileFields = []string{"source"}
	ignoredDomainFields  = []string{"source", "expirationDate"}
)

// decodeProfile decodes a profile body over base (the zero profile for a create, the stored one for a PATCH).
func decodeProfile(body []byte, base profiles.Profile) (profiles.Profile, map[string]bool, []profiles.FieldError) {
	p := base
	present, errs := decodeObject(body, &p, ignoredProfileFields...)
	return p, present, errs
}

// decodeDomain decodes a domain body.
func decodeDomain(body []byte) (domainBody, map[string]bool, []profiles.FieldError) {
	var d domainBody
	present, errs := decodeObject(body, &d, ignoredDomainFields...)
	return d, present, errs
}

// inspectBody is the box's POST /api/v1/admin/domains/inspect body.
type inspectBody struct {
	ProvisioningCert              string `json:"provisioningCert"`
	ProvisioningCertPassword      string `json:"provisioningCertPassword"`
	ProvisioningCertStorageFormat string `json:"provisioningCertStorageFormat"`
	DomainSuffix                  string `json:"domainSuffix"`
}

// DecodeInspect reads an inspect body ({provisioningCert, provisioningCertPassword, domainSuffix}) for
// InspectPFX. A refusal is a *ValidationError whose items quote neither the certificate nor the password.
func DecodeInspect(body []byte) (pfx []byte, password, suffix string, err error) {
	var b inspectBody
	_, errs := decodeObject(body, &b)
	if len(errs) == 0 {
		switch {
		case b.ProvisioningCert == "":
			errs = append(errs, bodyItem("provisioningCert", nil, "Provisioning certificate is required"))
		case len(b.ProvisioningCert) > MaxPFXBase64:
			errs = append(errs, bodyItem("provisioningCert", nil, fmt.Sprintf("Provisioning certificate is %d characters of base64; at most %d are accepted", len(b.ProvisioningCert), MaxPFXBase64)))
		default:
			var perr error
			if pfx, perr = decodePFX(b.ProvisioningCert); perr != nil {
				errs = append(errs, bodyItem("provisioningCert", nil, perr.Error()))
			}
		}
	}
	if len(errs) > 0 {
		return nil, "", "", &ValidationError{errs}
	}
	return pfx, b.ProvisioningCertPassword, b.DomainSuffix, nil
}
