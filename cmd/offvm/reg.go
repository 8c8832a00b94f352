package main

import (
	"fmt"
	"os"

	"github.com/offvm/offvm/registry/regops"
	"github.com/urfave/cli/v2"
)

func regCommand() *cli.Command {
	return &cli.Command{
		Name:  "reg",
		Usage: "export or import registry keys of a Windows image",
		Subcommands: []*cli.Command{
			{
				Name: "export", Usage: "print a key and everything below it as regedit 5.00 text",
				ArgsUsage: `IMAGE 'HKLM\SOFTWARE\Some\Key'`,
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 2, 2, `IMAGE 'HKLM\SOFTWARE\Some\Key'`); err != nil {
						return err
					}
					return regops.Export(c.App.Writer, c.Args().Get(0), c.Args().Get(1))
				},
			},
			{
				Name: "import", Usage: "merge a .reg file into the image's hives, committed as one transaction",
				ArgsUsage: "IMAGE FILE.reg",
				Description: `Accepts REGEDIT4 and regedit 5.00 files, UTF-16LE with a BOM or UTF-8;
[-Key] and "value"=- delete; missing parent keys are created. The image gets
every change or, on any error, none.`,
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 2, 2, "IMAGE FILE.reg"); err != nil {
						return err
					}
					img, file := c.Args().Get(0), c.Args().Get(1)
					text, err := os.ReadFile(file)
					if err != nil {
						return err
					}
					res, err := regops.Import(img, text, file)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "imported %s into %s: %d operations, committed in %s\n", file, img, res.Ops, res.Commit.Duration.Round(1e6))
					return nil
				},
			},
		},
	}
}
