package main

import (
	"path/filepath"

	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/mount"
	"github.com/urfave/cli/v2"
)

// keysCommands are the commands that open images, and so take --keys.
var keysCommands = map[string]bool{
	"mount": true, "ls": true, "inspect": true, "check": true, "report": true,
	"reg export": true, "reg import": true, "patch apply": true, "patch status": true,
}

// addKeysFlag gives every command that opens images a --keys FILE, loaded
// before the command runs. Only the file's name ever leaves this process
// (the mount daemon reads the file again); the secrets stay in memory.
func addKeysFlag(cmds []*cli.Command, prefix string) {
	for _, cmd := range cmds {
		name := prefix + cmd.Name
		addKeysFlag(cmd.Subcommands, name+" ")
		if !keysCommands[name] {
			continue
		}
		cmd.Flags = append(cmd.Flags, &cli.StringFlag{Name: "keys", Usage: "unlock BitLocker volumes with the secrets in `FILE` " +
			"(mode 600; one a line: a 48-digit recovery password, password:TEXT or bek:PATH, each optionally after a volume GUID or a glob on its description)"})
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if err := loadKeys(c); err != nil {
				return err
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}

func loadKeys(c *cli.Context) error {
	f := c.String("keys")
	if f == "" {
		return nil
	}
	s, err := keys.Load(f)
	if err != nil {
		return err
	}
	mount.SetKeys(s)
	return nil
}

// keysArg passes --keys on to the mount daemon, as an absolute path.
func keysArg(c *cli.Context) []string {
	f := c.String("keys")
	if f == "" {
		return nil
	}
	if abs, err := filepath.Abs(f); err == nil {
		f = abs
	}
	return []string{"--keys", f}
}
