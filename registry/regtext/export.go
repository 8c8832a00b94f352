package regtext

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/offvm/offvm/registry/hive"
)

// Header is the first line of a regedit 5.00 file.
const Header = "Windows Registry Editor Version 5.00"

// ExportOptions tunes Export.
type ExportOptions struct {
	// Prefix is printed before each key path, e.g.
	// `HKEY_LOCAL_MACHINE\SOFTWARE`; without it paths start with `\`.
	Prefix string
	// Strings prints REG_SZ values as quoted strings and wraps long hex
	// lines, as regedit does. Without it the output is byte for byte what
	// `hivexregedit --export` prints (every value in hex but REG_DWORD).
	Strings bool
}

// Export prints the subtree at k in regedit 5.00 format: the header, then
// each key ([path]) with its values sorted by name, then its subkeys sorted
// by name, in UTF-8.
func Export(w io.Writer, k *hive.Key, opt ExportOptions) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s\n\n", Header)
	prefix := strings.TrimSuffix(opt.Prefix, `\`)
	if err := exportKey(bw, k, `\`+k.Path(), prefix, opt); err != nil {
		return err
	}
	return bw.Flush()
}

func exportKey(w *bufio.Writer, k *hive.Key, path, prefix string, opt ExportOptions) error {
	if path == `\\` || path == `\` {
		path = `\`
	}
	fmt.Fprintf(w, "[%s%s]\n", prefix, path)
	vals, err := k.Values()
	if err != nil {
		return err
	}
	sorted := append([]*hive.Value(nil), vals...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name() < sorted[j].Name() })
	for _, v := range sorted {
		data, err := v.Data()
		if err != nil {
			return err
		}
		writeValue(w, v.Name(), v.Type(), data, opt.Strings)
	}
	w.WriteString("\n")
	subs, err := k.Subkeys()
	if err != nil {
		return err
	}
	sortedSubs := append([]*hive.Key(nil), subs...)
	sort.SliceStable(sortedSubs, func(i, j int) bool { return sortedSubs[i].Name() < sortedSubs[j].Name() })
	for _, s := range sortedSubs {
		child := path + `\` + s.Name()
		if path == `\` {
			child = `\` + s.Name()
		}
		if err := exportKey(w, s, child, prefix, opt); err != nil {
			return err
		}
	}
	return nil
}

// writeValue prints one `"name"=data` line.
func writeValue(w *bufio.Writer, name string, typ uint32, data []byte, strs bool) {
	var lead string
	if name == "" {
		lead = "@="
	} else {
		lead = `"` + escape(name) + `"=`
	}
	w.WriteString(lead)
	switch {
	case typ == hive.RegDword && len(data) == 4:
		fmt.Fprintf(w, "dword:%08x\n", binary.LittleEndian.Uint32(data))
	case strs && typ == hive.RegSz && printableString(data):
		w.WriteString(`"` + escape(utf16String(data)) + "\"\n")
	case strs:
		tag := fmt.Sprintf("hex(%x):", typ)
		if typ == hive.RegBinary {
			tag = "hex:"
		}
		writeWrappedHex(w, len(lead)+len(tag), tag, data)
	default:
		fmt.Fprintf(w, "hex(%x):", typ)
		const digits = "0123456789abcdef"
		for i, b := range data {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteByte(digits[b>>4])
			w.WriteByte(digits[b&15])
		}
		w.WriteString("\n")
	}
}

// writeWrappedHex prints hex bytes as regedit does: lines of at most 80
// characters, continued with a backslash and two spaces of indent.
func writeWrappedHex(w *bufio.Writer, col int, tag string, data []byte) {
	w.WriteString(tag)
	for i, b := range data {
		piece := fmt.Sprintf("%02x", b)
		if i < len(data)-1 {
			piece += ","
		}
		if col+len(piece) > 78 && i < len(data)-1 {
			w.WriteString("\\\n  ")
			col = 2
		}
		w.WriteString(piece)
		col += len(piece)
	}
	w.WriteString("\n")
}

// escape doubles backslashes and escapes quotes, as regedit does in names
// and strings.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, `"`, `\"`)
}

// printableString says whether REG_SZ data round-trips through a quoted
// string: UTF-16LE, NUL-terminated, no NUL inside, no line breaks.
func printableString(b []byte) bool {
	if len(b) < 2 || len(b)%2 != 0 || b[len(b)-1] != 0 || b[len(b)-2] != 0 {
		return false
	}
	u := make([]uint16, len(b)/2-1)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
		if u[i] == 0 || u[i] == '\n' || u[i] == '\r' || (u[i] >= 0xD800 && u[i] < 0xE000) {
			return false
		}
	}
	return true
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}
