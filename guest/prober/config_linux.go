package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/greet"
)

// configPath is a variable so that tests can point it elsewhere.
var configPath = contract.ConfigPath

// loadConfig reads the prober's configuration and fills in defaults. On
// error it still returns a usable Config (default steps), so that every
// step can report the error.
func loadConfig(path string) (contract.Config, error) {
	var cfg contract.Config
	b, err := os.ReadFile(path)
	if err == nil {
		if uerr := json.Unmarshal(b, &cfg); uerr != nil {
			err = fmt.Errorf("decode config %s: %w", path, uerr)
			cfg = contract.Config{}
		}
	} else {
		err = fmt.Errorf("read config: %w", err)
	}
	if cfg.ModuleName == "" {
		cfg.ModuleName = greet.ModuleName
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = greet.Protocol
	}
	if len(cfg.Steps) == 0 {
		cfg.Steps = append([]string(nil), contract.CoreSteps...)
	}
	if err == nil && cfg.ModulePath == "" && cfg.Project == nil {
		err = fmt.Errorf("config %s: module_path is empty", path)
	}
	return cfg, err
}
