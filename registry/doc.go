// Package registry gathers the Windows registry engine in one place, so a
// newcomer finds the registry in two folders: this one (the engine) and
// registryfs (the view, keys as folders and values as files).
//
//   - hive: regf parsing, log replay, editing and compact writing
//   - winreg: which hive files a Windows guest has, where they mount, and
//     writing changed hives back
//   - regtext: .reg text (hivexregedit's format), parse, export and apply
//   - regops: `offvm reg` export and import on an image
//
// mount/registry.go (the hives of a mounted image) and patcher/registry.go
// (a bundle's .reg files) are callers of these packages.
package registry
