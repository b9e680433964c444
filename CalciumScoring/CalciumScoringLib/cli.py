"""Placeholder until the CalciumScoring CLI lands (issue 3)."""


def add_parser(subparsers):
    p = subparsers.add_parser("calcium", help="coronary calcium scoring")
    p.add_argument("input")
    p.set_defaults(func=run)


def run(args):
    from quantgpu.cli import input_path

    input_path(args.input)
    raise NotImplementedError("calcium scoring is not implemented yet")


def demo(output_dir, backend="auto", force=False):
    raise NotImplementedError
