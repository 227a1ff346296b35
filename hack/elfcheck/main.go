// Command elfcheck fails unless each named file is a statically linked ELF executable:
// no program interpreter (PT_INTERP) and no shared-library dependencies (DT_NEEDED).
// With -stripped it also requires what `-ldflags "-s -w"` does: no symbol table, no DWARF.
package main

import (
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	stripped := flag.Bool("stripped", false, "also require no symbol table (-s) and no DWARF (-w)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: elfcheck [-stripped] FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range flag.Args() {
		if err := checkStatic(path, *stripped); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
			continue
		}
		fmt.Printf("%s: static ELF executable (stripped checked: %t)\n", path, *stripped)
	}
	if failed {
		os.Exit(1)
	}
}

func checkStatic(path string, stripped bool) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("open elf: %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("not an executable (type %s)", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked: has a program interpreter")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read imported libraries: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	if stripped {
		for _, sec := range f.Sections {
			if sec.Name == ".symtab" {
				return fmt.Errorf("has a symbol table: not linked with -s")
			}
			if strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_") {
				return fmt.Errorf("has DWARF section %s: not linked with -w", sec.Name)
			}
		}
	}
	return nil
}
