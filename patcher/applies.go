package patcher

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/offvm/offvm/inspect"
)

// Applicable says why the rules do not match the guest, or "" when they
// do. A fact the rules need that the image does not tell makes the bundle
// not applicable: offvm never guesses.
func (r Rules) Applicable(o *inspect.OS) string {
	if o == nil {
		if r == (Rules{}) {
			return ""
		}
		return "no operating system found in the image"
	}
	if r.OS != "" && !strings.EqualFold(r.OS, o.Family) {
		return fmt.Sprintf("os %s is not %s", o.Family, strings.ToLower(r.OS))
	}
	if why := r.distribution(o); why != "" {
		return why
	}
	if r.Product != "" {
		name := deref(o.ProductName)
		if name == "" {
			return fmt.Sprintf("the product name is unknown; the bundle wants %s", r.Product)
		}
		if !globMatch(r.Product, name) {
			return fmt.Sprintf("product %s does not match %s", name, r.Product)
		}
	}
	if r.MinBuild != nil || r.MaxBuild != nil {
		if o.Build == nil {
			return "the build number is unknown; the bundle names a build range"
		}
		if r.MinBuild != nil && *o.Build < *r.MinBuild {
			return fmt.Sprintf("build %d is below min_build %d", *o.Build, *r.MinBuild)
		}
		if r.MaxBuild != nil && *o.Build > *r.MaxBuild {
			return fmt.Sprintf("build %d is above max_build %d", *o.Build, *r.MaxBuild)
		}
	}
	if r.Arch != "" {
		arch := deref(o.Arch)
		if arch == "" {
			return fmt.Sprintf("the architecture is unknown; the bundle wants %s", r.Arch)
		}
		if !strings.EqualFold(arch, r.Arch) {
			return fmt.Sprintf("arch %s is not %s", arch, r.Arch)
		}
	}
	return ""
}

// globMatch matches a product name against a glob (*, ?, [...]),
// case-insensitively. Product names are not paths: "*" crosses "/" (as in
// "Debian GNU/Linux"), so the slash is swapped for a character globs
// never treat specially.
func globMatch(pattern, name string) bool {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "/", "\u2215") }
	ok, _ := path.Match(fold(pattern), fold(name))
	return ok
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// distribution checks os-release's ID and VERSION_ID against the rules.
func (r Rules) distribution(o *inspect.OS) string {
	if r.Distribution != "" {
		id := deref(o.Distribution)
		if id == "" {
			return fmt.Sprintf("the distribution is unknown; the bundle wants %s", r.Distribution)
		}
		if !strings.EqualFold(id, r.Distribution) {
			return fmt.Sprintf("distribution %s is not %s", id, strings.ToLower(r.Distribution))
		}
	}
	if r.MinVersion != "" {
		v := deref(o.Version)
		if v == "" {
			return fmt.Sprintf("the version is unknown; the bundle wants at least %s", r.MinVersion)
		}
		if !versionAtLeast(v, r.MinVersion) {
			return fmt.Sprintf("version %s is below min_version %s", v, r.MinVersion)
		}
	}
	return ""
}

// versionAtLeast compares dotted version numbers ("12", "22.04") part by
// part as numbers; a part that is not a number compares as text.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < max(len(h), len(w)); i++ {
		var a, b string
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		x, errA := strconv.Atoi(a)
		y, errB := strconv.Atoi(b)
		if a == "" {
			x, errA = 0, nil
		}
		if b == "" {
			y, errB = 0, nil
		}
		switch {
		case errA == nil && errB == nil && x != y:
			return x > y
		case (errA != nil || errB != nil) && a != b:
			return a > b
		}
	}
	return true
}
