// Package packaging tests what the amtedge .deb and .rpm deliver, with the real tools and no mocks: the systemd
// units (systemd-analyze verify and security, systemd-sysusers, systemd-tmpfiles), the packages nfpm builds
// (reproducible, lintian-clean, rpm metadata), and their install, upgrade, remove and purge in a Debian bookworm
// chroot made by mmdebstrap (cached in ~/.cache/amtedge) — the .deb with apt and dpkg, the .rpm with rpm --root.
//
// It holds no Go code of the product; it must never be skipped silently: a missing tool is a failure that says
// `make test` installs it.
package packaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	nfpmVersion = "v2.45.2"
	// A fixed SOURCE_DATE_EPOCH makes the packages of one test run comparable byte for byte.
	sourceDateEpoch = "1795000000"
	v1, v2          = "1.0.0", "1.1.0"
)

// repoRoot is the module root (this package's parent directory).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// cacheDir holds what is slow to make and outside the repository: nfpm, the bookworm chroot tarball.
func cacheDir(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("no home directory for the cache: %v", err)
	}
	return filepath.Join(home, ".cache", "amtedge")
}

// needTool fails (never skips) when a program the test runs is missing.
func needTool(t *testing.T, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: `make test` installs it (Debian package %s, listed in scripts/test-packages.txt)", name, debPackage)
	}
	return p
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root (%s); run `make test` as root or with sudo", why)
	}
}

// run runs a command and fails the test with its output when it fails; it returns stdout and stderr.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func runErr(dir string, env []string, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// --- systemd units -------------------------------------------------------------------------------------------

// unitRoot is a file system root for `systemd-analyze verify --root`: the host's unit directory (for
// multi-user.target, sysinit.target, …), the commands the unit runs, and amtedge's units.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	sysdir := filepath.Join(root, "usr/lib/systemd/system")
	for _, d := range []string{"usr/bin", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	run(t, "", nil, "cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/"))
	// verify only checks that ExecStart= and ExecReload= name executables.
	for _, p := range []string{"usr/bin/amtedge", "usr/bin/kill"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"amtedge.service", "amtedge.socket", "amtedge-admin.socket"} {
		run(t, "", nil, "cp", filepath.Join(repoRoot(t), "systemd", u), sysdir)
	}
	return root
}

func TestUnitVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	root := unitRoot(t)
	// verify exits 0 on unknown keys and many other problems, so any output at all is a failure.
	stdout, stderr, err := runErr("", nil, analyze, "verify", "--root="+root, "amtedge.service", "amtedge.socket", "amtedge-admin.socket")
	if err != nil || stdout != "" || stderr != "" {
		t.Fatalf("systemd-analyze verify amtedge.service amtedge.socket amtedge-admin.socket: err=%v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}

	// The harness itself: a unit with a misspelt key must produce output, or the check above proves nothing.
	bad := filepath.Join(root, "usr/lib/systemd/system/amtedge-bad.service")
	if err := os.WriteFile(bad, []byte("[Service]\nExecStart=/usr/bin/amtedge serve\nProtectSystm=strict\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, _ = runErr("", nil, analyze, "verify", "--root="+root, "amtedge-bad.service")
	if !strings.Contains(stderr, "ProtectSystm") {
		t.Fatalf("systemd-analyze verify did not report an unknown key; stderr:\n%s", stderr)
	}
}

func TestUnitSecurityExposure(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	unit := filepath.Join(repoRoot(t), "systemd", "amtedge.service")
	// --threshold counts in tenths (the exposure shown as 2.0 is 20 internally).
	stdout, stderr, err := runErr("", nil, analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", unit)
	m := regexp.MustCompile(`Overall exposure level for amtedge\.service: (\d+\.\d)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no exposure figure in systemd-analyze security output (err=%v):\n%s\n%s", err, stdout, stderr)
	}
	exposure, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("amtedge.service exposure: %.1f (limit 2.0)", exposure)
	if err != nil || exposure > 2.0 {
		var failing []string
		for _, l := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(l, "✗") {
				failing = append(failing, l)
			}
		}
		t.Fatalf("exposure %.1f > 2.0 (err=%v); exposed settings:\n%s", exposure, err, strings.Join(failing, "\n"))
	}
}

// TestSysusersTmpfiles applies the sysusers.d and tmpfiles.d entries to a scratch root with systemd's own tools:
// the user exists with its home, joins tss, and the state directory is the user's with mode 0700.
func TestSysusersTmpfiles(t *testing.T) {
	sysusers := needTool(t, "systemd-sysusers", "systemd")
	tmpfiles := needTool(t, "systemd-tmpfiles", "systemd")
	needRoot(t, "systemd-tmpfiles --root chowns to the new user")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A root with a tss group, as tpm-udev leaves it.
	for name, content := range map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":   "root:x:0:\ntss:x:105:\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\ntss:!::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "", nil, sysusers, "--root="+root, filepath.Join(repoRoot(t), "systemd", "amtedge.sysusers"))
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	pw := regexp.MustCompile(`(?m)^amtedge:x:(\d+):(\d+):amtedge appliance:/var/lib/amtedge:/usr/sbin/nologin$`).FindSubmatch(passwd)
	if pw == nil {
		t.Fatalf("no amtedge user in /etc/passwd:\n%s", passwd)
	}
	if !regexp.MustCompile(`(?m)^tss:x:105:amtedge$`).Match(group) {
		t.Fatalf("amtedge is not in tss (GID kept 105):\n%s", group)
	}
	run(t, "", nil, tmpfiles, "--root="+root, "--create", filepath.Join(repoRoot(t), "systemd", "amtedge.tmpfiles"))
	st, err := os.Stat(filepath.Join(root, "var/lib/amtedge"))
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(string(pw[1]))
	if owner := statOwner(st); st.Mode().Perm() != 0o700 || owner[0] != uid {
		t.Fatalf("/var/lib/amtedge: mode %o owner %v, want 0700 owned by amtedge (%d)", st.Mode().Perm(), owner, uid)
	}
}

// --- packages ------------------------------------------------------------------------------------------------

// builtPackages are the packages of one test run: v1 built twice (reproducibility) and v2 (upgrades).
type builtPackages struct {
	deb1, rpm1, deb1b, rpm1b, deb2, rpm2 string
	elapsed                              time.Duration
}

var (
	buildOnce sync.Once
	built     builtPackages
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// packages builds the .deb and .rpm with packaging/build.sh (what `make package` runs) once per test run.
func packages(t *testing.T) builtPackages {
	t.Helper()
	nfpm := filepath.Join(cacheDir(t), "tools", "nfpm-"+nfpmVersion)
	if p := os.Getenv("AMTEDGE_NFPM"); p != "" {
		nfpm = p
	}
	if _, err := os.Stat(nfpm); err != nil {
		t.Fatalf("nfpm %s not found at %s: `make test` builds it first (Makefile rule $(NFPM)), or run `make package`", nfpmVersion, nfpm)
	}
	buildOnce.Do(func() {
		start := time.Now()
		buildDir, buildErr = os.MkdirTemp("", "amtedge-packages-")
		if buildErr != nil {
			return
		}
		root := repoRoot(t)
		catalog := filepath.Join(root, "systemd", "amtedge.catalog")
		if _, buildErr = os.Stat(catalog); buildErr != nil { // generated by go test ./appliance/events -update
			return
		}
		// Three builds at once: most of the time is nfpm's xz compression, one core each.
		type result struct {
			deb, rpm string
			err      error
		}
		build := func(version, out string, done chan<- result) {
			env := []string{"NFPM=" + nfpm, "VERSION=" + version, "PKG_VERSION=", "SOURCE_DATE_EPOCH=" + sourceDateEpoch,
				"GOARCH=amd64", "CATALOG=" + catalog, "BINARY="}
			stdout, stderr, err := runErr(root, env, "./packaging/build.sh", filepath.Join(buildDir, out))
			if err != nil {
				done <- result{err: fmt.Errorf("packaging/build.sh %s: %v\n%s%s", version, err, stdout, stderr)}
				return
			}
			lines := strings.Fields(stdout)
			if len(lines) != 2 {
				done <- result{err: fmt.Errorf("packaging/build.sh printed %q, want the .deb and .rpm paths", stdout)}
				return
			}
			done <- result{deb: lines[0], rpm: lines[1]}
		}
		a, b, c := make(chan result, 1), make(chan result, 1), make(chan result, 1)
		go build(v1, "a", a)
		go build(v1, "b", b)
		go build(v2, "c", c)
		ra, rb, rc := <-a, <-b, <-c
		for _, r := range []result{ra, rb, rc} {
			if r.err != nil && buildErr == nil {
				buildErr = r.err
			}
		}
		built.deb1, built.rpm1 = ra.deb, ra.rpm
		built.deb1b, built.rpm1b = rb.deb, rb.rpm
		built.deb2, built.rpm2 = rc.deb, rc.rpm
		built.elapsed = time.Since(start)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func TestPackagesNamedAndReproducible(t *testing.T) {
	p := packages(t)
	t.Logf("three package builds took %v", p.elapsed.Round(time.Millisecond))
	if filepath.Base(p.deb1) != "amtedge_1.0.0_amd64.deb" || filepath.Base(p.rpm1) != "amtedge-1.0.0.x86_64.rpm" {
		t.Errorf("package names %s, %s; want amtedge_1.0.0_amd64.deb, amtedge-1.0.0.x86_64.rpm", filepath.Base(p.deb1), filepath.Base(p.rpm1))
	}
	for _, pair := range [][2]string{{p.deb1, p.deb1b}, {p.rpm1, p.rpm1b}} {
		a, b := sha256File(t, pair[0]), sha256File(t, pair[1])
		if a != b {
			t.Errorf("%s: two builds of the same commit differ: %s vs %s", filepath.Base(pair[0]), a, b)
		}
	}
}

// TestPackageVersion: git describe output becomes a version dpkg and rpm both accept and order correctly.
func TestPackageVersion(t *testing.T) {
	for _, tc := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabcdef0", "1.2.3+4.gabcdef0"},
		{"v1.2.3-4-gabcdef0-dirty", "1.2.3+4.gabcdef0.dirty"},
		{"7f23954-dirty", "0.0.0+git.7f23954.dirty"}, // no tag yet: a hash, even one starting with a digit
		{"dev", "0.0.0+git.dev"},
	} {
		stdout, _ := run(t, repoRoot(t), []string{"VERSION=" + tc.describe, "PKG_VERSION="}, "./packaging/build.sh", "--print-version")
		if got := strings.TrimSpace(stdout); got != tc.want {
			t.Errorf("VERSION=%s: package version %q, want %q", tc.describe, got, tc.want)
		}
	}
}

func TestDebContents(t *testing.T) {
	needTool(t, "dpkg-deb", "dpkg")
	p := packages(t)
	members, _ := run(t, "", nil, "ar", "t", p.deb1)
	if !strings.Contains(members, "data.tar.xz") {
		t.Errorf(".deb members %q: want an xz-compressed data.tar (lintian on bookworm rejects zstd)", members)
	}
	fields, _ := run(t, "", nil, "dpkg-deb", "--field", p.deb1, "Package", "Version", "Architecture", "Depends", "Maintainer")
	for _, want := range []string{"Package: amtedge", "Version: 1.0.0", "Architecture: amd64", "Depends: tpm-udev, procps"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control fields lack %q:\n%s", want, fields)
		}
	}
	ctrl := t.TempDir()
	run(t, "", nil, "dpkg-deb", "--control", p.deb1, ctrl)
	if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/amtedge/amtedge.yaml" {
		t.Errorf("conffiles = %q, want /etc/amtedge/amtedge.yaml", b)
	}
	list, _ := run(t, "", nil, "dpkg-deb", "--contents", p.deb1)
	for _, want := range []string{"./usr/bin/amtedge", "./usr/lib/systemd/system/amtedge.service", "./usr/lib/systemd/system/amtedge.socket",
		"./usr/lib/systemd/system/amtedge-admin.socket", "./usr/lib/sysusers.d/amtedge.conf", "./usr/lib/tmpfiles.d/amtedge.conf", "./usr/lib/systemd/catalog/amtedge.catalog",
		"./etc/amtedge/amtedge.yaml", "./usr/share/doc/amtedge/copyright", "./usr/share/doc/amtedge/changelog.gz",
		"./usr/share/doc/amtedge/examples/site.yaml", "./usr/share/doc/amtedge/examples/vault-policy.hcl",
		"./usr/share/man/man8/amtedge.8.gz", "./usr/share/lintian/overrides/amtedge"} {
		if !strings.Contains(list, want+"\n") {
			t.Errorf(".deb lacks %s; contents:\n%s", want, list)
		}
	}
	// Every file carries SOURCE_DATE_EPOCH as its time.
	stamp := time.Unix(mustAtoi(t, sourceDateEpoch), 0).UTC().Format("2006-01-02 15:04")
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		if !strings.Contains(l, stamp) {
			t.Errorf("entry without the SOURCE_DATE_EPOCH time %s: %s", stamp, l)
		}
	}
}

func TestLintian(t *testing.T) {
	lintian := needTool(t, "lintian", "lintian")
	p := packages(t)
	// Overrides (packaging/lintian-overrides, shipped in the .deb) only for tags inherent to a static Go binary.
	stdout, stderr, err := runErr("", []string{"LC_ALL=C.UTF-8"}, lintian, "--fail-on", "error,warning", "--info", "--display-info", p.deb1)
	t.Logf("lintian:\n%s", stdout)
	if err != nil {
		t.Fatalf("lintian reports errors or warnings (%v):\n%s\n%s", err, stdout, stderr)
	}
	overrides, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "lintian-overrides"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(overrides), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !strings.Contains(l, "statically-linked-binary") {
			t.Errorf("lintian override %q is not one inherent to a static Go binary", l)
		}
	}
}

func TestRPMMetadata(t *testing.T) {
	rpm := needTool(t, "rpm", "rpm")
	p := packages(t)
	info, _ := run(t, "", nil, rpm, "-qpil", p.rpm1)
	for _, want := range []string{"Name        : amtedge", "Version     : 1.0.0", "Architecture: x86_64",
		"/usr/bin/amtedge\n", "/usr/lib/systemd/system/amtedge.service\n", "/usr/lib/sysusers.d/amtedge.conf\n",
		"/usr/lib/tmpfiles.d/amtedge.conf\n", "/usr/lib/systemd/catalog/amtedge.catalog\n", "/etc/amtedge/amtedge.yaml\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("rpm -qpil lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "changelog.gz") || strings.Contains(info, "lintian") {
		t.Errorf("the .rpm carries Debian-only files:\n%s", info)
	}
	modes, _ := run(t, "", nil, rpm, "-qp", "--qf", `[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`, p.rpm1)
	for _, want := range []string{"-rw-r----- root amtedge cn /etc/amtedge/amtedge.yaml", "drwxr-x--- root amtedge  /etc/amtedge",
		"-rwxr-xr-x root root  /usr/bin/amtedge"} {
		if !strings.Contains(modes, want+"\n") {
			t.Errorf("rpm file attributes lack %q:\n%s", want, modes)
		}
	}
	scripts, _ := run(t, "", nil, rpm, "-qp", "--scripts", p.rpm1)
	for _, want := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet",
		"useradd --system", "usermod --append --groups tss", `if [ "$1" -eq 1 ]`, "systemctl try-restart amtedge.service"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm scriptlets lack %q:\n%s", want, scripts)
		}
	}
	requires, _ := run(t, "", nil, rpm, "-qp", "--requires", p.rpm1)
	for _, want := range []string{"tpm2-tss", "shadow-utils"} {
		if !strings.Contains(requires, want+"\n") {
			t.Errorf("rpm requires lack %s:\n%s", want, requires)
		}
	}
}

// --- install, upgrade, remove, purge in a bookworm chroot ----------------------------------------------------

// A bookworm root: "minbase" (no systemd, as in a container: the scripts' fallbacks run — useradd, the enable
// symlink made by hand or by deb-systemd-helper) or "systemd" (minbase plus systemd, as on an appliance: the
// scripts use systemd-sysusers and systemctl; systemd is not running, as in any chroot).
type rootKind string

const (
	minbase     rootKind = "minbase"
	withSystemd rootKind = "systemd"
)

var tarballOnce = map[rootKind]*sync.Once{minbase: {}, withSystemd: {}}

// debDepends are the .deb's dependencies, as nfpm.yaml declares them (TestDebDependsListed keeps the two equal).
var debDepends = []string{"tpm-udev", "procps"}

// TestDebDependsListed checks debDepends against nfpm.yaml's top-level depends: list, so the cached roots hold
// every dependency the .deb declares.
func TestDebDependsListed(t *testing.T) {
	b, err := os.ReadFile("../nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "depends:":
			in = true
		case in && strings.HasPrefix(line, "  - "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "  - "), "#")
			got = append(got, strings.TrimSpace(name))
		case in:
			in = false
		}
	}
	if strings.Join(got, ",") != strings.Join(debDepends, ",") {
		t.Fatalf("nfpm.yaml depends: %v, debDepends (the cached chroots' extra packages): %v; make them equal", got, debDepends)
	}
}

// aptInstall installs a local .deb with apt from what the root already holds: the root has no package lists, so a
// dependency it lacks fails the install rather than being downloaded.
func aptInstall(t *testing.T, root, deb string) string {
	t.Helper()
	return in(t, root, "apt-get", "install", "-y", "-q", "--no-install-recommends", deb)
}

// bookwormRoot unpacks a fresh bookworm root. Its tarball is made once per machine with mmdebstrap and kept in
// ~/.cache/amtedge (delete it to refresh).
func bookwormRoot(t *testing.T, kind rootKind) string {
	t.Helper()
	needRoot(t, "chroot, dpkg and rpm scriptlets inside the root")
	// The package's own dependencies (nfpm.yaml depends:) are in the tarball, so installing the .deb needs no
	// Debian mirror on later runs: a dependency missing from this list fails the install (apt is told not to
	// download), which is how a new dependency is noticed here.
	name := "bookworm-minbase-deps.tar"
	args := []string{"--variant=minbase", "--format=tar", "--quiet", "--include=" + strings.Join(debDepends, ",")}
	if kind == withSystemd {
		name = "bookworm-minbase-systemd-deps.tar"
		args = append(args, "--include=systemd")
	}
	tarball := filepath.Join(cacheDir(t), name)
	var err error
	tarballOnce[kind].Do(func() {
		if _, statErr := os.Stat(tarball); statErr == nil {
			return
		}
		mmdebstrap := needTool(t, "mmdebstrap", "mmdebstrap")
		if err = os.MkdirAll(filepath.Dir(tarball), 0o755); err != nil {
			return
		}
		// mmdebstrap picks the output format from the name: keep ".tar" at the end.
		tmp := strings.TrimSuffix(tarball, ".tar") + ".partial.tar"
		start := time.Now()
		stdout, stderr, runE := runErr("", nil, mmdebstrap, append(args, "bookworm", tmp)...)
		if runE != nil {
			os.Remove(tmp)
			err = fmt.Errorf("mmdebstrap %s bookworm (needs the Debian mirror): %v\n%s%s", strings.Join(args, " "), runE, stdout, stderr)
			return
		}
		err = os.Rename(tmp, tarball)
		t.Logf("made the bookworm root tarball in %v: %s", time.Since(start).Round(time.Second), tarball)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, statErr := os.Stat(tarball); statErr != nil || !st.Mode().IsRegular() {
		t.Fatalf("bookworm root tarball %s missing or not a file (delete it to have it made again): %v", tarball, statErr)
	}
	root := t.TempDir()
	run(t, "", nil, "tar", "-C", root, "-xf", tarball)
	// Name resolution for apt inside the root.
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		os.WriteFile(filepath.Join(root, "etc/resolv.conf"), b, 0o644)
	}
	return root
}

// in runs a command inside the root and fails with its output on error.
func in(t *testing.T, root string, args ...string) string {
	t.Helper()
	stdout, stderr := run(t, "", []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		"chroot", append([]string{root}, args...)...)
	return stdout + stderr
}

func inErr(root string, args ...string) (string, error) {
	stdout, stderr, err := runErr("", []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		"chroot", append([]string{root}, args...)...)
	return stdout + stderr, err
}

func copyInto(t *testing.T, root, src string) string {
	t.Helper()
	dst := "/tmp/" + filepath.Base(src)
	run(t, "", nil, "cp", src, filepath.Join(root, dst))
	return dst
}

func TestDebInstallUpgradeRemovePurge(t *testing.T) {
	t.Parallel()
	needTool(t, "chroot", "coreutils")
	p := packages(t)
	for _, kind := range []rootKind{minbase, withSystemd} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			debLifecycle(t, p, kind)
		})
	}
}

func debLifecycle(t *testing.T, p builtPackages, kind rootKind) {
	root := bookwormRoot(t, kind)
	deb1, deb2 := copyInto(t, root, p.deb1), copyInto(t, root, p.deb2)

	out := aptInstall(t, root, deb1)
	t.Logf("apt-get install %s:\n%s", deb1, lastLines(out, 8))

	checkInstalled(t, root, v1, kind)
	if kind == withSystemd {
		checkCatalog(t, root)
	}
	if st := lstat(t, root, "/etc/amtedge/amtedge.yaml"); st.Mode().Perm() != 0o640 {
		t.Errorf("/etc/amtedge/amtedge.yaml mode %o, want 0640", st.Mode().Perm())
	}
	checkGroupOwned(t, root, "/etc/amtedge/amtedge.yaml")
	checkShippedConfig(t, root)

	// Upgrade over an edited config: the edit stays, no prompt, the new binary runs.
	editConfig(t, root)
	in(t, root, "dpkg", "-i", deb2)
	checkEdited(t, root)
	checkInstalled(t, root, v2, kind)

	// remove: stopped and disabled, state, config and user kept.
	in(t, root, "dpkg", "--remove", "amtedge")
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/amtedge.service")); err == nil {
		t.Error("after remove, amtedge.service is still enabled")
	}
	for _, p := range []string{"/var/lib/amtedge/marker", "/etc/amtedge/amtedge.yaml"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("after remove, %s is gone: %v", p, err)
		}
	}
	in(t, root, "getent", "passwd", "amtedge")
	checkEdited(t, root)

	// Installing again enables it again.
	in(t, root, "dpkg", "-i", deb2)
	checkInstalled(t, root, v2, kind)

	// purge: state, config, enable records and user gone.
	in(t, root, "dpkg", "--purge", "amtedge")
	for _, p := range []string{"/var/lib/amtedge", "/etc/amtedge/amtedge.yaml", "/etc/systemd/system/multi-user.target.wants/amtedge.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("after purge, %s still exists", p)
		}
	}
	if out, err := inErr(root, "getent", "passwd", "amtedge"); err == nil {
		t.Errorf("after purge, user amtedge still exists: %s", out)
	}
	if out, err := inErr(root, "getent", "group", "amtedge"); err == nil {
		t.Errorf("after purge, group amtedge still exists: %s", out)
	}
}

// TestRPMInstallUpgradeErase installs the .rpm with `rpm --root` into a bookworm root: RPM's own dependencies
// (tpm2-tss, shadow-utils) are not installable there, hence --nodeps, and a tss group stands in for tpm2-tss's.
// The scriptlets run inside the root as on an RPM distribution without systemd running.
func TestRPMInstallUpgradeErase(t *testing.T) {
	t.Parallel()
	needTool(t, "rpm", "rpm")
	p := packages(t)
	for _, kind := range []rootKind{minbase, withSystemd} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			rpmLifecycle(t, p, kind)
		})
	}
}

func rpmLifecycle(t *testing.T, p builtPackages, kind rootKind) {
	rpm := needTool(t, "rpm", "rpm")
	root := bookwormRoot(t, kind)
	// The scriptlets expect group tss (tpm2-tss makes it on RPM distributions); the root's tpm-udev already has.
	in(t, root, "groupadd", "-f", "--system", "tss")
	rpmIn := func(args ...string) string {
		t.Helper()
		stdout, stderr := run(t, "", nil, rpm, append([]string{"--root", root, "--nodeps"}, args...)...)
		return stdout + stderr
	}
	rpmIn("-i", p.rpm1)
	checkInstalled(t, root, v1, kind)
	if st := lstat(t, root, "/etc/amtedge/amtedge.yaml"); st.Mode().Perm() != 0o640 {
		t.Errorf("/etc/amtedge/amtedge.yaml mode %o, want 0640", st.Mode().Perm())
	}
	checkGroupOwned(t, root, "/etc/amtedge/amtedge.yaml")
	checkShippedConfig(t, root)

	editConfig(t, root)
	rpmIn("-U", p.rpm2)
	checkEdited(t, root)
	checkInstalled(t, root, v2, kind)
	if _, err := os.Stat(filepath.Join(root, "etc/amtedge/amtedge.yaml.rpmnew")); err == nil {
		t.Error("upgrade left amtedge.yaml.rpmnew although the shipped config did not change")
	}

	// erase: disabled; state and user kept (RPM has no purge); the edited config saved as .rpmsave.
	rpmIn("-e", "amtedge")
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/amtedge.service")); err == nil {
		t.Error("after erase, amtedge.service is still enabled")
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/amtedge/marker")); err != nil {
		t.Errorf("after erase, the state is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/amtedge/amtedge.yaml.rpmsave")); err != nil {
		t.Errorf("after erase, the edited config was not saved as .rpmsave: %v", err)
	}
	in(t, root, "getent", "passwd", "amtedge")
	if out, err := inErr(root, "test", "-e", "/usr/bin/amtedge"); err == nil {
		t.Errorf("after erase, /usr/bin/amtedge is still there %s", out)
	}
}

// probeScript runs inside the booted root once amtedge.service has started (or failed), records what the test
// asserts into /probe.out, and powers the container off.
const probeScript = `#!/bin/sh
for i in $(seq 1 120); do
	s=$(systemctl show -P ActiveState amtedge.service)
	[ "$s" = active ] || [ "$s" = failed ] && break
	sleep 0.5
done
{
	systemctl show amtedge.service -p ActiveState -p SubState -p NRestarts -p StatusText
	pid=$(systemctl show -P MainPID amtedge.service)
	echo "MainUser=$(stat -c %U /proc/$pid)"
	grep -E '^(Groups|NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/$pid/status | tr -d '\t' | sed 's/:/=/'
	# Listening TCP ports (hex) in the container's own network namespace.
	echo "ListenPorts=$(awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 | sort -u | tr '\n' ' ')"
	echo "StateDir=$(stat -c '%U %a' /var/lib/amtedge)"
	echo "DEK=$(stat -c '%U %a' /var/lib/amtedge/dek)"
	if systemctl reload amtedge.service; then echo Reload=ok; else echo Reload=failed; fi
	sleep 1
	echo "AfterReload=$(systemctl show -P ActiveState amtedge.service)"
	systemctl stop amtedge.service
	echo "StopResult=$(systemctl show -P Result amtedge.service)"
	echo "--- journal"
	journalctl -u amtedge.service --no-pager -o short
} >/probe.out 2>&1
systemctl poweroff
`

// TestServiceRunsHardened boots the bookworm root (with systemd) in systemd-nspawn after installing the .deb and
// writing the example site file, and checks the real daemon under the hardened unit: it reaches READY (Type=notify
// reports active only then) without restarts and with a STATUS= line, as user amtedge in tss, with no
// capabilities, NoNewPrivs and a seccomp filter; its key file is private (UMask); reload (SIGHUP via /bin/kill)
// keeps it active; stop ends it cleanly. Twice: binding agent.listen (:8080) itself, and with amtedge.socket moved
// to port 443 as its comment documents, where the daemon must take systemd's "agent" socket instead.
func TestServiceRunsHardened(t *testing.T) {
	t.Parallel()
	nspawn := needTool(t, "systemd-nspawn", "systemd-container")
	p := packages(t)
	for _, socket := range []bool{false, true} {
		name := "listen-8080"
		if socket {
			name = "socket-443"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bootService(t, nspawn, p, socket)
		})
	}
}

func bootService(t *testing.T, nspawn string, p builtPackages, socket bool) {
	root := bookwormRoot(t, withSystemd)
	deb := copyInto(t, root, p.deb1)
	aptInstall(t, root, deb)
	checkShippedConfig(t, root) // leaves a valid site file in /etc/amtedge

	unit := "[Unit]\nAfter=amtedge.service\n[Service]\nType=oneshot\nExecStart=/probe.sh\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.WriteFile(filepath.Join(root, "probe.sh"), []byte(probeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/probe.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/systemd/system/probe.service", filepath.Join(root, "etc/systemd/system/multi-user.target.wants/probe.service")); err != nil {
		t.Fatal(err)
	}
	if socket {
		// What `systemctl edit amtedge.socket` + `systemctl enable amtedge.socket` leave behind.
		dropin := filepath.Join(root, "etc/systemd/system/amtedge.socket.d")
		if err := os.MkdirAll(dropin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dropin, "override.conf"), []byte("[Socket]\nListenStream=\nListenStream=443\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		in(t, root, "systemctl", "enable", "amtedge.socket")
	}
	// --private-network: the container's ports are its own, whatever the host runs.
	cmd := exec.Command(nspawn, "--quiet", "--directory="+root, "--boot", "--register=no", "--keep-unit", "--private-network", "--console=pipe")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("systemd-nspawn: %v\n%s", err, console.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the container did not power off within 3 minutes; console:\n%s", console.String())
	}
	out, err := os.ReadFile(filepath.Join(root, "probe.out"))
	if err != nil {
		t.Fatalf("no probe output (%v); console:\n%s", err, console.String())
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if l == "--- journal" {
			break
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	t.Logf("probe:\n%s", out)
	want := map[string]string{"ActiveState": "active", "SubState": "running", "NRestarts": "0", "MainUser": "amtedge",
		"NoNewPrivs": "1", "Seccomp": "2", "CapEff": "0000000000000000", "CapBnd": "0000000000000000",
		"StateDir": "amtedge 700", "DEK": "amtedge 600", "Reload": "ok", "AfterReload": "active", "StopResult": "success"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got["StatusText"] == "" {
		t.Error("no STATUS= text from the daemon")
	}
	ports := " " + got["ListenPorts"] + " "
	const p8080, p443 = " 1F90 ", " 01BB "
	if socket && (!strings.Contains(ports, p443) || strings.Contains(ports, p8080)) {
		t.Errorf("listening ports (hex) %q: want 443 from amtedge.socket and not the daemon's own :8080", got["ListenPorts"])
	}
	if !socket && !strings.Contains(ports, p8080) {
		t.Errorf("listening ports (hex) %q: want 8080 (agent.listen)", got["ListenPorts"])
	}
	tss := strings.TrimSpace(in(t, root, "getent", "group", "tss"))
	if gid := strings.Split(tss, ":"); len(gid) < 3 || !strings.Contains(" "+got["Groups"]+" ", " "+gid[2]+" ") {
		t.Errorf("the daemon's groups %q do not include tss (%s)", got["Groups"], tss)
	}
}

// checkInstalled: the user exists and is in tss, the state directory is its own with 0700, the unit is enabled
// (the symlink systemctl enable makes), and `amtedge version` runs inside the root.
func checkInstalled(t *testing.T, root, version string, kind rootKind) {
	t.Helper()
	groups := in(t, root, "id", "-nG", "amtedge")
	if !strings.Contains(" "+strings.TrimSpace(groups)+" ", " tss ") {
		t.Errorf("amtedge groups %q: not in tss", strings.TrimSpace(groups))
	}
	shell := strings.TrimSpace(in(t, root, "getent", "passwd", "amtedge"))
	if !strings.HasSuffix(shell, ":/var/lib/amtedge:/usr/sbin/nologin") {
		t.Errorf("amtedge passwd entry %q: want home /var/lib/amtedge, shell nologin", shell)
	}
	st := lstat(t, root, "/var/lib/amtedge")
	if !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/amtedge mode %v, want a 0700 directory", st.Mode())
	}
	owner := strings.TrimSpace(in(t, root, "stat", "-c", "%U:%G", "/var/lib/amtedge"))
	if owner != "amtedge:amtedge" {
		t.Errorf("/var/lib/amtedge owned by %s, want amtedge:amtedge", owner)
	}
	os.WriteFile(filepath.Join(root, "var/lib/amtedge/marker"), []byte("state"), 0o600)
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/amtedge.service")
	target, err := os.Readlink(link)
	if err != nil {
		t.Errorf("amtedge.service not enabled: %v", err)
	} else if _, err := os.Stat(filepath.Join(root, target)); err != nil || filepath.Base(target) != "amtedge.service" {
		t.Errorf("enable symlink points to %s, which is not the unit in the root (%v)", target, err)
	}
	if kind == withSystemd {
		if got := strings.TrimSpace(in(t, root, "systemctl", "is-enabled", "amtedge.service")); got != "enabled" {
			t.Errorf("systemctl is-enabled amtedge.service = %q", got)
		}
	}
	if got := strings.TrimSpace(in(t, root, "amtedge", "version")); got != "amtedge "+version {
		t.Errorf("amtedge version = %q, want %q", got, "amtedge "+version)
	}
}

// checkCatalog: systemd's dpkg trigger compiled the shipped journald catalog, so `journalctl -x` explains
// amtedge's events.
func checkCatalog(t *testing.T, root string) {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/catalog/amtedge.catalog"))
	if err != nil {
		t.Fatalf("catalog not installed: %v", err)
	}
	ids := regexp.MustCompile(`(?m)^-- ([0-9a-f]{32})`).FindAllSubmatch(shipped, -1)
	if len(ids) == 0 {
		t.Fatal("the shipped amtedge.catalog has no entries")
	}
	list := in(t, root, "journalctl", "--list-catalog")
	for _, id := range ids {
		if !strings.Contains(list, string(id[1])) {
			t.Errorf("MESSAGE_ID %s of amtedge.catalog is not in journalctl --list-catalog", id[1])
		}
	}
}

// checkShippedConfig: the config as shipped names a site file the operator writes; until then `config check`
// (and the service) fail naming it; with the example site file and its password file in place it passes.
func checkShippedConfig(t *testing.T, root string) {
	t.Helper()
	out, err := inErr(root, "amtedge", "config", "check", "--config", "/etc/amtedge/amtedge.yaml")
	if err == nil || !strings.Contains(out, "/etc/amtedge/site.yaml") || !strings.Contains(out, "no such file") {
		t.Errorf("config check of the shipped config without a site file: err=%v, output %q; want a failure naming /etc/amtedge/site.yaml", err, out)
	}
	in(t, root, "cp", "/usr/share/doc/amtedge/examples/site.yaml", "/etc/amtedge/site.yaml")
	if err := os.WriteFile(filepath.Join(root, "etc/amtedge/ccm-amt.pass"), []byte("Ex4mple-AMT-pass!\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	in(t, root, "chown", "root:amtedge", "/etc/amtedge/ccm-amt.pass")
	if out := in(t, root, "amtedge", "config", "check", "--config", "/etc/amtedge/amtedge.yaml"); !strings.Contains(out, "valid") {
		t.Errorf("config check with the example site file: %q", out)
	}
}

func checkGroupOwned(t *testing.T, root, path string) {
	t.Helper()
	if owner := strings.TrimSpace(in(t, root, "stat", "-c", "%U:%G", path)); owner != "root:amtedge" {
		t.Errorf("%s owned by %s, want root:amtedge", path, owner)
	}
}

const edit = "# edited by the site technician\n"

func editConfig(t *testing.T, root string) {
	t.Helper()
	p := filepath.Join(root, "etc/amtedge/amtedge.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("level: info"), []byte("level: debug"), 1)
	if err := os.WriteFile(p, append([]byte(edit), b...), 0o640); err != nil {
		t.Fatal(err)
	}
}

func checkEdited(t *testing.T, root string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/amtedge/amtedge.yaml"))
	if err != nil {
		t.Fatalf("edited config: %v", err)
	}
	if !bytes.HasPrefix(b, []byte(edit)) || !bytes.Contains(b, []byte("level: debug")) {
		t.Errorf("the edited /etc/amtedge/amtedge.yaml was replaced:\n%s", b)
	}
}

func lstat(t *testing.T, root, p string) os.FileInfo {
	t.Helper()
	st, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// statOwner is a file's [uid, gid].
func statOwner(st os.FileInfo) [2]int {
	sys := st.Sys().(*syscall.Stat_t)
	return [2]int{int(sys.Uid), int(sys.Gid)}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
