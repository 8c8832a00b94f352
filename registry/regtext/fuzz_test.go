package regtext

import (
	"testing"

	"github.com/offvm/offvm/registry/hive"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\A]\n\"s\"=\"x\"\n@=dword:1\n\"h\"=hex(7):61,00,\\\n  00,00\n[-HKEY_LOCAL_MACHINE\\SOFTWARE\\A\\B]\n\"d\"=-\n"))
	f.Add([]byte("REGEDIT4\r\n[K]\r\n\"e\"=hex(2):41,42,00\r\n"))
	f.Add([]byte("\xFF\xFEW\x00i\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := Parse(b)
		if err != nil {
			return
		}
		h := hive.New("ROOT")
		Apply(h.Root(), ops, `HKEY_LOCAL_MACHINE\SOFTWARE`)
	})
}
