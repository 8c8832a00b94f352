// Command offvm-firstboot is the Windows service offvm stages into an
// image beside update packages (C:\Windows\offvm\offvm-firstboot.exe,
// service offvm-firstboot, LocalSystem, automatic). At boot it installs
// the staged packages with DISM; the logic is in updates/firstboot.
// Build: GOOS=windows GOARCH=amd64 go build ./cmd/offvm-firstboot
package main

func main() { run() }
