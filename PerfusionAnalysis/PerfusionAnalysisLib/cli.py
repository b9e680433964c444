"""Placeholder until the PerfusionAnalysis CLI lands (issue 4)."""


def add_parser(subparsers):
    p = subparsers.add_parser("perfusion", help="CT/MR perfusion")
    p.add_argument("input")
    p.set_defaults(func=run)


def run(args):
    from quantgpu.cli import input_path

    input_path(args.input)
    raise NotImplementedError("perfusion analysis is not implemented yet")


def demo(output_dir, backend="auto", force=False):
    raise NotImplementedError
