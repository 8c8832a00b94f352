package main

// Commands of the contract that later issues build live here until they
// are written; every command of the contract now has its own file.
