"""The lowest layer: errors, typed configs, the process group, the content-keyed cache, the record of the code
each cached stage runs, and the masking of toxic text. Imports nothing else from toxlab."""
