"""CalciumScoring array algorithms, MRML layer and front-end glue."""
