package site

import (
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/amtedge/amtedge/appliance/profiles"
)

// FuzzParse feeds arbitrary bytes to the site file parser. Parse must never
// panic, must fail only with *KeyError values, and what it accepts must keep
// the package's promises (no inline password, valid profiles, absolute
// paths) and survive a marshal/parse round trip unchanged. Seeds live in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleSite))
	f.Add([]byte(loadSite))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, "/base")
		if err != nil {
			// Every error, not just one of those joined, must locate itself by key.
			for _, e := range leafErrors(err) {
				if _, ok := e.(*KeyError); !ok {
					t.Fatalf("error is not a *KeyError: %T %v", e, e)
				}
			}
			return
		}
		for _, d := range file.Domains {
			if !filepath.IsAbs(d.PFXFile) || !filepath.IsAbs(d.PasswordFile) {
				t.Fatalf("relative path survived: %+v", d)
			}
		}
		for _, p := range file.Profiles {
			if p.AMTPassword != "" || p.MEBxPassword != "" {
				t.Fatal("inline password survived Parse")
			}
			opts := profiles.ValidateOptions{AMTPasswordByReference: p.AMTPasswordFile != "", MEBxPasswordByReference: p.MEBxPasswordFile != ""}
			if errs := p.ValidateWith(opts); len(errs) > 0 {
				t.Fatalf("invalid profile accepted: %v", errs)
			}
		}
		out, err := yaml.Marshal(file)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out, "/other")
		if err != nil {
			t.Fatalf("re-parse of marshalled file: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(file, again) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v\n%s", file, again, out)
		}
	})
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}
