package site

import (
	"errors"
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
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error is not a *KeyError: %T %v", err, err)
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
