"""Per-process memory: the source (`source`), tables (`table`), the verdict on the system
(`verdict`), the doctor's one-shot health check (`doctor`), kernel log signs (`logs`) and the
`processes` and `doctor` commands (`command`). Imports nothing, so each caller loads only its part."""
