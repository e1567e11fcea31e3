/* SPDX-License-Identifier: MIT
 *
 * tessera-cli-commands — the subcommands of tessera-cli, one function per command, each
 * in its own cmd-<name>.c and listed in the commands table of tessera-cli.c. A command
 * gets argv starting at its own name and returns the process exit status (0 success,
 * 1 failure, 2 usage error).
 */
#ifndef TESSERA_CLI_COMMANDS_H
#define TESSERA_CLI_COMMANDS_H

/* `inspect [--fp16] MODEL_DIR`: components, configs, parameters, dtypes, sizes and the
 * estimated memory to run a model folder. */
int tessera_cli_inspect (int argc, char **argv);
int tessera_cli_generate (int argc, char **argv);
int tessera_cli_inpaint (int argc, char **argv);
int tessera_cli_img2img (int argc, char **argv);
int tessera_cli_outpaint (int argc, char **argv);
int tessera_cli_branch (int argc, char **argv);
int tessera_cli_refine (int argc, char **argv);
int tessera_cli_info (int argc, char **argv);
/* `animate --image X.png --out Y.webp [--codebook]`: the unmasking as an animated WebP. */
int tessera_cli_animate (int argc, char **argv);
int tessera_cli_make_mask (int argc, char **argv);
/* `devices`: the Vulkan devices and the one the default backend would use. */
int tessera_cli_devices (int argc, char **argv);

/* `make-random-model --configs DIR --out DIR [--dtype f16|f32|bf16] [--seed S]
 * [--tokenizer DIR]`: a full-size model folder with random weights, for benchmarks. */
int tessera_cli_make_random_model (int argc, char **argv);

/* With a check backend ("check:..."), shows the check backend's INFO lines (its summary
 * when the backend is freed: ops checked, worst relative error per op kind) on stderr
 * whatever the log level; other messages keep the user's level. Nothing otherwise. */
void tessera_cli_show_check_log (const char *backend);

/* `bench --model DIR [--size WxH] [--steps N] [--backend NAME] [--threads N]
 * [--fp16]`: per-stage times, transformer GFLOP/s and peak memory of a generation. */
int tessera_cli_bench (int argc, char **argv);

/* `download [--variant fp16|fp32|all] [--revision REV] REPO_ID [DIR]`: a model folder from
 * the Hugging Face hub (app/hub), resumable and verified. Built with libsoup 3 only. */
int tessera_cli_download (int argc, char **argv);

#endif /* TESSERA_CLI_COMMANDS_H */
